"""A policy string becomes the checkpoints a sweep scores, through the layout its backend registered."""

from __future__ import annotations

from pathlib import Path

import pytest

from libs.evaluation.checkpoints import expand_policy
from libs.policy_api.checkpoint_folders import CheckpointNotFoundError, find_step_folders
from libs.policy_api.registry import register_backend


def _is_checkpoint(path: Path) -> bool:
    return (path / "weights").is_file()


def _run(root: Path, steps: list[int]) -> Path:
    for step in steps:
        folder = root / "checkpoints" / f"{step:06d}"
        folder.mkdir(parents=True)
        (folder / "weights").write_text("")
    (root / "checkpoints" / "last").symlink_to(root / "checkpoints" / f"{steps[-1]:06d}")
    return root


register_backend(
    "test_layout",
    lambda argument: None,  # type: ignore[arg-type,return-value]
    find_checkpoints=lambda path: find_step_folders(path, _is_checkpoint, "checkpoints/NNNNNN/weights"),
)


def test_a_run_expands_to_each_checkpoint_once_in_step_order(tmp_path: Path) -> None:
    run = _run(tmp_path / "run", [20000, 5000, 10000])
    targets = expand_policy(f"test_layout:{run}")
    # `last` is not counted twice; each checkpoint gets its own policy string
    steps = [(t.checkpoint_id, t.step) for t in targets]
    assert steps == [("005000", 5000), ("010000", 10000), ("020000", 20000)]
    assert targets[0].policy_uri == f"test_layout:{run}/checkpoints/005000"
    assert expand_policy(f"test_layout:{run}/checkpoints") == targets
    single = f"test_layout:{run}/checkpoints/010000"
    assert [(t.checkpoint_id, t.policy_uri) for t in expand_policy(single)] == [("010000", single)]


def test_pathless_backends_and_missing_paths(tmp_path: Path) -> None:
    (scripted,) = expand_policy("scripted")
    assert scripted.checkpoint_id == "scripted" and scripted.step is None
    with pytest.raises(CheckpointNotFoundError, match="does not exist"):
        expand_policy(f"test_layout:{tmp_path / 'nope'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointNotFoundError, match="no checkpoints under .*checkpoints/NNNNNN/weights"):
        expand_policy(f"test_layout:{tmp_path / 'empty'}")
