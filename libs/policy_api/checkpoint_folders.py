"""The run layout both model backends share: ``<run>/checkpoints/NNNNNN/``, the step from the folder name.

What makes a folder a checkpoint (LeRobot's ``pretrained_model/config.json``, the jax backend's
``config.json``) is each backend's own knowledge, passed in as ``is_checkpoint``; this module only walks a
run. Aliases (LeRobot's ``last`` symlink, any other link) are skipped and real paths de-duplicated, so no
checkpoint is scored twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from libs.policy_api.load_errors import PolicyLoadError

CHECKPOINTS_DIR_NAME = "checkpoints"


class CheckpointNotFoundError(PolicyLoadError):
    """The policy string names no checkpoint; the message names the layout that is understood."""


@dataclass(frozen=True)
class FoundCheckpoint:
    """One checkpoint a backend found: ``path`` is what its ``load_policy`` and ``read_card`` accept."""

    checkpoint_id: str
    path: Path
    step: int | None


def find_step_folders(
    path: Path, is_checkpoint: Callable[[Path], bool], layout: str, found_at: Callable[[Path], Path] = Path
) -> list[FoundCheckpoint]:
    """``path`` itself when it is a checkpoint, else every ``NNNNNN`` checkpoint below ``path`` or its
    ``checkpoints/`` folder, in step order. ``found_at`` maps a given checkpoint path to its step folder
    (LeRobot's ``.../NNNNNN/pretrained_model`` → ``.../NNNNNN``); ``layout`` names the expected files in
    the error message."""
    path = path.expanduser()
    if not path.exists():
        raise CheckpointNotFoundError(
            f"checkpoint path {path} does not exist: pass a run dir, its {CHECKPOINTS_DIR_NAME}/ dir or one "
            f"{CHECKPOINTS_DIR_NAME}/NNNNNN dir"
        )
    if is_checkpoint(path):
        folder = found_at(path)
        return [FoundCheckpoint(folder.name, path, int(folder.name) if folder.name.isdigit() else None)]
    parent = path / CHECKPOINTS_DIR_NAME if (path / CHECKPOINTS_DIR_NAME).is_dir() else path
    found: list[FoundCheckpoint] = []
    seen: set[Path] = set()
    for child in sorted(parent.iterdir(), key=lambda p: (len(p.name), p.name)):
        # `last` (and any alias) points at a checkpoint listed under its own NNNNNN name.
        if child.is_symlink() or not child.name.isdigit() or not is_checkpoint(child):
            continue
        if (real := child.resolve()) in seen:
            continue
        seen.add(real)
        found.append(FoundCheckpoint(child.name, child, int(child.name)))
    if not found:
        raise CheckpointNotFoundError(f"no checkpoints under {path}: expected {layout}")
    return sorted(found, key=lambda checkpoint: (checkpoint.step is None, checkpoint.step))
