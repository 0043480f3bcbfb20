"""Registers the ``torch_lerobot`` backend: what only it knows, without importing torch or LeRobot.

Its checkpoints: LeRobot's layout, ``<run>/checkpoints/NNNNNN/pretrained_model/config.json`` (or a bare
``pretrained_model`` folder); its cards: ``checkpoints.read_card``; its policies: ``adapter.load_policy``,
imported at the first load (the torch stack).
"""

from __future__ import annotations

from pathlib import Path

from backends.torch_lerobot.checkpoints import PRETRAINED_DIR_NAME, read_card, resolve_pretrained_dir
from libs.policy_api.checkpoint_folders import FoundCheckpoint, find_step_folders
from libs.policy_api.registry import import_on_first_load, register_backend

NAME = "torch_lerobot"
CONFIG_FILE = "config.json"
LAYOUT = f"checkpoints/NNNNNN/{PRETRAINED_DIR_NAME}/{CONFIG_FILE} (LeRobot)"


def is_checkpoint(path: Path) -> bool:
    return (path / CONFIG_FILE).is_file() or (path / PRETRAINED_DIR_NAME / CONFIG_FILE).is_file()


def step_folder(path: Path) -> Path:
    """``.../NNNNNN`` for ``.../NNNNNN/pretrained_model``: the checkpoint's id and step are its name."""
    return path.parent if path.name == PRETRAINED_DIR_NAME else path


def find_checkpoints(path: Path) -> list[FoundCheckpoint]:
    return find_step_folders(path, is_checkpoint, LAYOUT, found_at=step_folder)


register_backend(
    NAME,
    import_on_first_load("backends.torch_lerobot.adapter", NAME),
    find_checkpoints=find_checkpoints,
    read_card=lambda argument: read_card(resolve_pretrained_dir(argument)),
)
