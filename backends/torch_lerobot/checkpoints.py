"""Where things live in a LeRobot training run, and the card this lab adds beside each checkpoint.

LeRobot's layout: ``<run>/checkpoints/<NNNNNN>/pretrained_model/`` holds ``config.json``,
``model.safetensors``, ``train_config.json`` and the processor pipelines (``policy_preprocessor.json``,
``policy_postprocessor.json`` and their ``*.safetensors`` state, which carries the normalisation stats).
Beside those training writes the checkpoint's card (``card.json``, ``libs.policy_api.card``), so an
evaluation knows the training scene, stats and block positions without finding the dataset again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from libs.policy_api.card import CheckpointCard
from libs.policy_api.checkpoint_folders import CHECKPOINTS_DIR_NAME, find_step_folders
from libs.policy_api.registry import FoundCheckpoint, PolicyLoadError

PRETRAINED_DIR_NAME = "pretrained_model"
CONFIG_FILE = "config.json"
LAST_CHECKPOINT_LINK = "last"
PREPROCESSOR_FILE = "policy_preprocessor.json"
POSTPROCESSOR_FILE = "policy_postprocessor.json"


class CheckpointError(PolicyLoadError):
    """A checkpoint directory is missing, incomplete or not LeRobot's layout; the message names the fix."""


def _numeric_step_dirs(checkpoints_dir: Path) -> list[Path]:
    return sorted(
        (child for child in checkpoints_dir.iterdir() if child.is_dir() and child.name.isdigit()),
        key=lambda child: int(child.name),
    )


def is_checkpoint_dir(path: Path) -> bool:
    return (path / CONFIG_FILE).is_file() or (path / PRETRAINED_DIR_NAME / CONFIG_FILE).is_file()


def find_checkpoints(path: Path) -> list[FoundCheckpoint]:
    """A run, its ``checkpoints/`` folder, one ``checkpoints/NNNNNN`` or its ``pretrained_model`` →
    its checkpoints in step order (``libs.policy_api.registry``)."""
    if path.name == PRETRAINED_DIR_NAME and is_checkpoint_dir(path):
        return [FoundCheckpoint(path.parent.name, path, step_from_dir(path))]
    layout = f"{CHECKPOINTS_DIR_NAME}/NNNNNN/{PRETRAINED_DIR_NAME}/{CONFIG_FILE} (LeRobot's layout)"
    return find_step_folders(path, is_checkpoint_dir, layout)


def read_card(argument: str) -> CheckpointCard | None:
    """The card training wrote into the checkpoint's ``pretrained_model`` (``libs.policy_api.registry``)."""
    return CheckpointCard.read(resolve_pretrained_dir(argument))


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """Every ``checkpoints/NNNNNN`` directory of a run, in step order."""
    checkpoints_dir = Path(run_dir) / CHECKPOINTS_DIR_NAME
    if not checkpoints_dir.is_dir():
        raise CheckpointError(
            f"{run_dir} has no {CHECKPOINTS_DIR_NAME}/ folder: pass a LeRobot training run dir"
        )
    return _numeric_step_dirs(checkpoints_dir)


def resolve_pretrained_dir(path: str | Path) -> Path:
    """``pretrained_model`` dir, a ``checkpoints/NNNNNN`` dir, or a run dir (-> its last checkpoint)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist: pass a LeRobot run or checkpoint directory")
    if (path / CONFIG_FILE).is_file():
        return path
    if (path / PRETRAINED_DIR_NAME / CONFIG_FILE).is_file():
        return path / PRETRAINED_DIR_NAME
    checkpoints_dir = path / CHECKPOINTS_DIR_NAME
    if checkpoints_dir.is_dir():
        last = checkpoints_dir / LAST_CHECKPOINT_LINK
        steps = _numeric_step_dirs(checkpoints_dir)
        candidate = last.resolve() if last.exists() else (steps[-1] if steps else None)
        if candidate is not None and (candidate / PRETRAINED_DIR_NAME / CONFIG_FILE).is_file():
            return candidate / PRETRAINED_DIR_NAME
    raise CheckpointError(
        f"{path} is not a LeRobot checkpoint: expected config.json in it, in {PRETRAINED_DIR_NAME}/, "
        f"or a {CHECKPOINTS_DIR_NAME}/NNNNNN/{PRETRAINED_DIR_NAME}/ below it"
    )


def step_from_dir(pretrained_dir: Path) -> int | None:
    """The training step, read from the ``NNNNNN`` folder name (None for a bare exported model)."""
    folder = pretrained_dir.parent.name if pretrained_dir.name == PRETRAINED_DIR_NAME else pretrained_dir.name
    return int(folder) if folder.isdigit() else None


def check_processor_files(pretrained_dir: Path) -> None:
    """Refuse a checkpoint without its processors: its actions would never be de-normalised."""
    missing = [
        name for name in (PREPROCESSOR_FILE, POSTPROCESSOR_FILE) if not (pretrained_dir / name).is_file()
    ]
    if missing:
        raise CheckpointError(
            f"checkpoint {pretrained_dir} lacks {', '.join(missing)}: without the saved processors its "
            "inputs are not normalised and its actions never de-normalised; use a checkpoint written by "
            "lerobot-train (>= 0.4) or copy the processor files from the training run's pretrained_model/"
        )


def read_json_beside(pretrained_dir: Path, name: str) -> Any | None:
    """A JSON file kept beside the checkpoint, or None."""
    path = pretrained_dir / name
    return json.loads(path.read_text()) if path.is_file() else None
