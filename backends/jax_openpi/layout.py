"""Where things live in a jax_openpi run, without importing jax (the backend registers from here).

``<run>/checkpoints/NNNNNN/`` holds ``config.json`` (the TrainConfig), ``params/``, ``train_state/``,
``assets/norm_stats.json`` and the checkpoint's card (``card.json``: ``libs.policy_api.card``).
"""

from __future__ import annotations

from pathlib import Path

from libs.policy_api.card import CheckpointCard
from libs.policy_api.registry import PolicyLoadError

CHECKPOINTS_DIR = "checkpoints"
STEP_DIGITS = 6
CONFIG_FILE = "config.json"


class CheckpointError(PolicyLoadError):
    """A checkpoint directory is missing, incomplete or corrupt; the message names the fix."""


def step_of(directory: Path) -> int | None:
    """The training step, from the ``NNNNNN`` folder name (None for a folder named otherwise)."""
    return int(directory.name) if directory.name.isdigit() else None


def read_card(directory: Path) -> CheckpointCard:
    """The card in a step folder (a pre-card checkpoint's scene.json/stats.json/block_positions.json)."""
    card = CheckpointCard.read(directory) or CheckpointCard()
    return card.with_fields(step=step_of(directory)) if card.step is None else card


def resolve_checkpoint_dir(path: Path | str) -> Path:
    """A step folder (has config.json), or a run folder / its checkpoints/ folder → its latest step."""
    path = Path(path).expanduser()
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist: pass <run>/checkpoints/NNNNNN")
    if (path / CONFIG_FILE).is_file():
        return path
    search = path / CHECKPOINTS_DIR if (path / CHECKPOINTS_DIR).is_dir() else path
    steps = sorted(child for child in search.iterdir() if child.is_dir() and child.name.isdigit())
    steps = [child for child in steps if (child / CONFIG_FILE).is_file()]
    if not steps:
        raise CheckpointError(
            f"{path} holds no checkpoint (no NNNNNN/{CONFIG_FILE}): pass a folder written by "
            "backends/jax_openpi:train"
        )
    return steps[-1]
