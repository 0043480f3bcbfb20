"""Registers the ``jax_openpi`` backend: what only it knows, without importing jax.

Its checkpoints: ``<run>/checkpoints/NNNNNN/config.json`` (+ ``params/``, orbax); its cards:
``layout.read_card``; its policies: ``adapter.load_policy``, imported at the first load (the jax stack).
"""

from __future__ import annotations

from pathlib import Path

from backends.jax_openpi.layout import CHECKPOINTS_DIR, CONFIG_FILE, read_card, resolve_checkpoint_dir
from libs.policy_api.checkpoint_folders import FoundCheckpoint, find_step_folders
from libs.policy_api.registry import import_on_first_load, register_backend

NAME = "jax_openpi"
LAYOUT = f"{CHECKPOINTS_DIR}/NNNNNN/{CONFIG_FILE} (jax_openpi)"


def find_checkpoints(path: Path) -> list[FoundCheckpoint]:
    return find_step_folders(path, lambda folder: (folder / CONFIG_FILE).is_file(), LAYOUT)


register_backend(
    NAME,
    import_on_first_load("backends.jax_openpi.adapter", NAME),
    find_checkpoints=find_checkpoints,
    read_card=lambda argument: read_card(resolve_checkpoint_dir(argument)),
)
