"""Checkpoint paths in LeRobot's layout: which directory a user may name, the step, the refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backends.torch_lerobot.checkpoints import (
    CheckpointError,
    check_processor_files,
    list_checkpoints,
    resolve_pretrained_dir,
    step_from_dir,
)
from libs.evaluation.checkpoints import expand_policy
from libs.policy_api.card import CheckpointCard
from libs.policy_api.registry import read_card


def _fake_run(root: Path, steps: list[int]) -> Path:
    for step in steps:
        pretrained = root / "checkpoints" / f"{step:06d}" / "pretrained_model"
        pretrained.mkdir(parents=True)
        for name in ("config.json", "policy_preprocessor.json", "policy_postprocessor.json"):
            (pretrained / name).write_text("{}")
    return root


def test_run_dir_resolves_to_the_last_checkpoint_and_steps_come_from_folder_names(tmp_path: Path) -> None:
    run = _fake_run(tmp_path / "run", [500, 1000, 20000])
    assert resolve_pretrained_dir(run) == run / "checkpoints" / "020000" / "pretrained_model"
    (run / "checkpoints" / "last").symlink_to("001000")  # LeRobot's pointer wins over the numbers
    assert resolve_pretrained_dir(run) == run / "checkpoints" / "001000" / "pretrained_model"
    assert (
        resolve_pretrained_dir(run / "checkpoints" / "000500") == run / "checkpoints/000500/pretrained_model"
    )
    pretrained = run / "checkpoints" / "020000" / "pretrained_model"
    assert resolve_pretrained_dir(pretrained) == pretrained
    assert step_from_dir(pretrained) == 20000
    assert [path.name for path in list_checkpoints(run)] == ["000500", "001000", "020000"]


def test_unusable_paths_get_one_line_naming_the_layout(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        resolve_pretrained_dir(tmp_path / "missing")
    with pytest.raises(CheckpointError, match="is not a LeRobot checkpoint") as raised:
        resolve_pretrained_dir(tmp_path)
    assert "\n" not in str(raised.value)


def test_missing_postprocessor_is_refused(tmp_path: Path) -> None:
    pretrained = _fake_run(tmp_path / "run", [10]) / "checkpoints" / "000010" / "pretrained_model"
    check_processor_files(pretrained)
    (pretrained / "policy_postprocessor.json").unlink()
    with pytest.raises(CheckpointError, match="never de-normalised"):
        check_processor_files(pretrained)


def test_a_sweep_expands_a_run_to_each_checkpoint_once(tmp_path: Path) -> None:
    run = _fake_run(tmp_path / "act", [20000, 5000, 10000])
    (run / "checkpoints" / "last").symlink_to(run / "checkpoints" / "020000")
    targets = expand_policy(f"torch_lerobot:{run}")
    assert [t.step for t in targets] == [5000, 10000, 20000]  # `last` is not counted twice
    assert [t.checkpoint_id for t in targets] == ["005000", "010000", "020000"]
    assert targets[0].policy_uri == f"torch_lerobot:{run}/checkpoints/005000"
    assert expand_policy(f"torch_lerobot:{run}/checkpoints") == targets
    (only,) = expand_policy(f"torch_lerobot:{run}/checkpoints/010000/pretrained_model")
    assert (only.checkpoint_id, only.step) == ("010000", 10000)


def test_the_card_is_read_from_the_pretrained_model_and_a_pre_card_checkpoint_still_has_one(
    tmp_path: Path,
) -> None:
    run = _fake_run(tmp_path / "act", [100, 200])
    card = CheckpointCard(scene={"cameras": []}, stats={"action": {"mean": [0.0]}}, step=200)
    card.write(run / "checkpoints" / "000200" / "pretrained_model")
    assert read_card(f"torch_lerobot:{run}/checkpoints/000200") == card
    legacy = run / "checkpoints" / "000100" / "pretrained_model"
    (legacy / "scene.json").write_text(json.dumps({"cameras": []}))
    (legacy / "block_positions.json").write_text(json.dumps([[0.2, 0.0]]))
    old = read_card(f"torch_lerobot:{legacy}")
    assert old is not None and old.scene == {"cameras": []} and old.block_positions == [[0.2, 0.0]]
