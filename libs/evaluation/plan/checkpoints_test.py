from __future__ import annotations

import json
from pathlib import Path

import pytest

from libs.evaluation.plan.checkpoints import (
    DEFAULT_SCENE,
    TRAINING_SCENE,
    CheckpointNotFoundError,
    expand_policy,
    plan_checkpoints,
    plan_one_checkpoint,
)
from libs.policy_api.card import CheckpointCard
from libs.policy_api.checkpoint_folders import find_step_folders
from libs.policy_api.registry import make_policy, register_backend
from libs.sim.scene_config import SceneConfig


def is_checkpoint(folder: Path) -> bool:
    return (folder / "weights").is_file()


def run(root: Path, steps: list[int]) -> Path:
    for step in steps:
        (root / "checkpoints" / f"{step:06d}").mkdir(parents=True)
        (root / "checkpoints" / f"{step:06d}" / "weights").write_text("")
    (root / "checkpoints" / "last").symlink_to(root / "checkpoints" / f"{steps[-1]:06d}")
    return root


# A backend with its own layout (a ``weights`` file per step folder) and cards in ``card.json``.
register_backend(
    "test_layout",
    lambda argument: make_policy("scripted"),
    find_checkpoints=lambda path: find_step_folders(path, is_checkpoint, "checkpoints/NNNNNN/weights"),
    read_card=lambda argument: CheckpointCard.read(argument),
)


def test_a_run_expands_to_each_checkpoint_once_in_the_backends_layout(tmp_path: Path) -> None:
    root = run(tmp_path / "run", [20000, 5000, 10000])
    targets = expand_policy(f"test_layout:{root}")
    assert [t.step for t in targets] == [5000, 10000, 20000]  # `last` is not counted twice
    assert [t.checkpoint_id for t in targets] == ["005000", "010000", "020000"]
    assert targets[0].policy_uri == f"test_layout:{root}/checkpoints/005000"
    assert expand_policy(f"test_layout:{root}/checkpoints") == targets
    (only,) = expand_policy(f"test_layout:{root}/checkpoints/010000")
    assert only.policy_uri == f"test_layout:{root}/checkpoints/010000" and only.step == 10000


def test_pathless_backends_and_missing_paths(tmp_path: Path) -> None:
    (scripted,) = expand_policy("scripted")
    assert scripted.checkpoint_id == "scripted" and scripted.step is None
    with pytest.raises(CheckpointNotFoundError, match="does not exist"):
        expand_policy(f"test_layout:{tmp_path / 'nope'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointNotFoundError, match="no checkpoints under .*: expected checkpoints/NNN"):
        expand_policy(f"test_layout:{tmp_path / 'empty'}")


def test_an_unknown_backend_is_named_before_its_path(tmp_path: Path) -> None:
    from libs.policy_api.registry import PolicyLoadError

    with pytest.raises(PolicyLoadError) as raised:
        expand_policy(f"frobnicate:{tmp_path / 'nowhere'}")
    assert str(raised.value).startswith("unknown policy backend 'frobnicate'")
    assert "does not exist" not in str(raised.value)


def test_each_checkpoints_scene_is_decided_once_from_scene_card_or_default(tmp_path: Path) -> None:
    root = run(tmp_path / "run", [100, 200])
    trained_in = SceneConfig(block_region_xy=((0.2, 0.25), (0.0, 0.1))).to_dict()
    CheckpointCard(scene=trained_in, step=200).write(root / "checkpoints" / "000200")
    first, second = plan_checkpoints(f"test_layout:{root}")
    assert first.card is None and first.scene is not None and first.scene.source == DEFAULT_SCENE
    assert second.card is not None and second.scene is not None and second.scene.source == TRAINING_SCENE
    assert second.scene.config == trained_in and second.scene.block_region() == ((0.2, 0.25), (0.0, 0.1))
    chosen = SceneConfig().save(tmp_path / "chosen.json")
    for target in plan_checkpoints(f"test_layout:{root}", chosen):
        assert target.scene.source == f"the scene {chosen}"
        assert target.scene.config == json.loads(chosen.read_text())


def test_one_named_checkpoint_is_planned_as_the_sweep_plans_each(tmp_path: Path) -> None:
    # rollouts and whiskers load the one checkpoint a URI names: card read once, scene decided from it.
    root = run(tmp_path / "run", [100, 200])
    trained_in = SceneConfig(block_region_xy=((0.2, 0.25), (0.0, 0.1))).to_dict()
    checkpoint = root / "checkpoints" / "000200"
    CheckpointCard(scene=trained_in, step=200).write(checkpoint)
    target = plan_one_checkpoint(f"test_layout:{checkpoint}")
    assert target.policy_uri == f"test_layout:{checkpoint}" and target.checkpoint_id == str(checkpoint)
    assert target.step == 200 and target.scene.source == TRAINING_SCENE
    # without a card the scene is decided by the same rule: here the bench default
    bare = plan_one_checkpoint(f"test_layout:{root / 'checkpoints' / '000100'}")
    assert bare.card is None and bare.scene.source == DEFAULT_SCENE and bare.checkpoint_id == ""
