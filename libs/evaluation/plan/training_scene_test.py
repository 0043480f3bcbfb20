from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from libs.evaluation.plan.training_scene import TrainingSceneMismatch, check_training_scene
from libs.sim.scene_config import SceneConfig


def wider_overhead() -> dict:
    overhead = dataclasses.replace(
        SceneConfig().camera("overhead"), fovy_deg=SceneConfig().camera("overhead").fovy_deg + 6
    )
    cameras = tuple(overhead if camera.name == "overhead" else camera for camera in SceneConfig().cameras)
    return dataclasses.replace(SceneConfig(), cameras=cameras).to_dict()


def checkpoint_with_scene_file(tmp_path: Path, scene: dict) -> Path:
    """checkpoints/000100 with the scene copy one folder down (where a backend keeps its files)."""
    weights = tmp_path / "run" / "checkpoints" / "000100" / "pretrained_model"
    weights.mkdir(parents=True)
    (weights / "scene.json").write_text(json.dumps(scene))
    return weights.parent


def dataset_with_scene(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    SceneConfig().save(root / "meta" / "scene.json")
    return root


def test_an_edited_checkpoint_scene_is_one_line_naming_both_and_the_fix(tmp_path: Path) -> None:
    root = dataset_with_scene(tmp_path)
    checkpoint = checkpoint_with_scene_file(tmp_path, wider_overhead())
    with pytest.raises(TrainingSceneMismatch) as raised:
        check_training_scene(checkpoint, wider_overhead(), dataset_root=root)
    message = str(raised.value)
    assert "\n" not in message
    fovy = SceneConfig().camera("overhead").fovy_deg
    assert f"camera 'overhead' fovy_deg: {fovy + 6:g} vs {fovy:g}" in message
    assert str(checkpoint / "pretrained_model" / "scene.json") in message
    assert str(root / "meta" / "scene.json") in message
    assert "cp " in message and "--scene" in message


def test_the_same_scene_or_an_unreachable_dataset_passes(tmp_path: Path) -> None:
    root = dataset_with_scene(tmp_path)
    checkpoint = checkpoint_with_scene_file(tmp_path, SceneConfig().to_dict())
    check_training_scene(checkpoint, SceneConfig().to_dict(), dataset_root=root)
    # A card that names no dataset: nothing to compare with.
    check_training_scene(checkpoint, wider_overhead(), dataset_root=None)
    # The dataset moved away (another machine): nothing to compare with.
    (root / "meta" / "scene.json").unlink()
    check_training_scene(checkpoint, wider_overhead(), dataset_root=root)


def test_a_checkpoint_that_reads_less_than_its_dataset_recorded_passes(tmp_path: Path) -> None:
    """An object-state estimator's checkpoint: its dataset recorded the object state, its scene drops it."""
    root = tmp_path / "data"
    dataclasses.replace(SceneConfig(), environment_state=True).save(root / "meta" / "scene.json")
    checkpoint = checkpoint_with_scene_file(tmp_path, SceneConfig().to_dict())
    check_training_scene(checkpoint, SceneConfig().to_dict(), dataset_root=root)
    gains = dataclasses.replace(SceneConfig(), environment_state=True).to_dict()
    with pytest.raises(TrainingSceneMismatch, match="environment_state"):
        check_training_scene(checkpoint, gains, dataset_root=dataset_with_scene(tmp_path / "plain"))
