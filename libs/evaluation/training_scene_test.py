from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from libs.evaluation.training_scene import (
    TrainingSceneMismatch,
    check_training_scene,
    training_dataset_root,
)
from libs.sim.scene_config import SceneConfig


def wider_overhead() -> dict:
    overhead = dataclasses.replace(
        SceneConfig().camera("overhead"), fovy_deg=SceneConfig().camera("overhead").fovy_deg + 6
    )
    cameras = tuple(overhead if camera.name == "overhead" else camera for camera in SceneConfig().cameras)
    return dataclasses.replace(SceneConfig(), cameras=cameras).to_dict()


def lerobot_checkpoint(tmp_path: Path, scene: dict, dataset_root: Path) -> Path:
    """checkpoints/000100/pretrained_model with a scene.json copy and train_config.json as LeRobot writes."""
    pretrained = tmp_path / "run" / "checkpoints" / "000100" / "pretrained_model"
    pretrained.mkdir(parents=True)
    (pretrained / "scene.json").write_text(json.dumps(scene))
    (pretrained / "train_config.json").write_text(json.dumps({"dataset": {"root": str(dataset_root)}}))
    return pretrained.parent


def dataset_with_scene(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    SceneConfig().save(root / "meta" / "scene.json")
    return root


def test_an_edited_checkpoint_scene_is_one_line_naming_both_and_the_fix(tmp_path: Path) -> None:
    root = dataset_with_scene(tmp_path)
    checkpoint = lerobot_checkpoint(tmp_path, wider_overhead(), root)
    assert training_dataset_root(checkpoint) == root
    with pytest.raises(TrainingSceneMismatch) as raised:
        check_training_scene(checkpoint, wider_overhead())
    message = str(raised.value)
    assert "\n" not in message
    fovy = SceneConfig().camera("overhead").fovy_deg
    assert f"camera 'overhead' fovy_deg: {fovy + 6:g} vs {fovy:g}" in message
    assert str(checkpoint / "pretrained_model" / "scene.json") in message
    assert str(root / "meta" / "scene.json") in message
    assert "cp " in message and "--scene" in message


def test_the_same_scene_or_an_unreachable_dataset_passes(tmp_path: Path) -> None:
    root = dataset_with_scene(tmp_path)
    checkpoint = lerobot_checkpoint(tmp_path, SceneConfig().to_dict(), root)
    check_training_scene(checkpoint, SceneConfig().to_dict())
    # The dataset moved away (another machine): nothing to compare with.
    (root / "meta" / "scene.json").unlink()
    check_training_scene(checkpoint, wider_overhead())
    # A card naming the dataset root directly is used instead of train_config.json.
    other = dataset_with_scene(tmp_path / "elsewhere")
    with pytest.raises(TrainingSceneMismatch):
        check_training_scene(checkpoint, wider_overhead(), dataset_root=other)
