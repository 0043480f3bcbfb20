"""Checkpoint paths in LeRobot's layout: which directory a user may name, the step, the refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backends.torch_lerobot.checkpoints import (
    CheckpointError,
    check_processor_files,
    copy_dataset_meta,
    list_checkpoints,
    resolve_pretrained_dir,
    step_from_dir,
)


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
    with pytest.raises(CheckpointError, match="would never be de-normalised"):
        check_processor_files(pretrained)


def test_dataset_meta_and_block_positions_are_copied_beside_the_weights(tmp_path: Path) -> None:
    meta = tmp_path / "data" / "meta"
    meta.mkdir(parents=True)
    (meta / "scene.json").write_text(json.dumps({"cameras": []}))
    (meta / "stats.json").write_text(json.dumps({"action": {"mean": [0.0]}}))
    (meta / "info.json").write_text(json.dumps({"block_positions": [[0.2, 0.0]]}))
    pretrained = tmp_path / "pretrained_model"
    pretrained.mkdir()
    copy_dataset_meta(tmp_path / "data", pretrained)
    assert json.loads((pretrained / "scene.json").read_text()) == {"cameras": []}
    assert json.loads((pretrained / "stats.json").read_text()) == {"action": {"mean": [0.0]}}
    assert json.loads((pretrained / "block_positions.json").read_text()) == [[0.2, 0.0]]
