"""Checkpoint layout, mirroring LeRobot's: ``<run>/checkpoints/NNNNNN/`` holds

- ``params/``                 weights for inference (the EMA weights when EMA is on), orbax
- ``train_state/``            optimiser state (and the raw weights when EMA is on), orbax, for resuming
- ``config.json``             the TrainConfig the model and transforms are rebuilt from
- ``assets/norm_stats.json``  openpi-format normalisation stats
- ``card.json``               the checkpoint's card (``libs.policy_api.card``): the training dataset's scene,
                              stats and block positions, the observation features the model reads

Orbax's CheckpointManager owns the step folders and the retention rule (keep the last ``keep_last`` plus
every ``keep_period``-th step), so a long run cannot fill the disk. jax and orbax are imported only by the
functions that write or read weights, so finding checkpoints and reading cards (a sweep's planning) stays
cheap.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backends.jax_openpi.config import TrainConfig
from backends.jax_openpi.norm_stats import NormStats, save_norm_stats
from libs.policy_api.card import CheckpointCard
from libs.policy_api.checkpoint_folders import find_step_folders
from libs.policy_api.registry import FoundCheckpoint, PolicyLoadError

if TYPE_CHECKING:
    import orbax.checkpoint as ocp

CHECKPOINTS_DIR = "checkpoints"
STEP_DIGITS = 6
CONFIG_FILE = "config.json"
ASSETS_DIR = "assets"
PARAMS_ITEM = "params"
TRAIN_STATE_ITEM = "train_state"


class CheckpointError(PolicyLoadError):
    """A checkpoint directory is missing, incomplete or corrupt; the message names the fix."""


def checkpoint_manager(run_dir: Path, config: TrainConfig) -> ocp.CheckpointManager:
    import orbax.checkpoint as ocp

    options = ocp.CheckpointManagerOptions(
        max_to_keep=config.keep_last,
        keep_period=config.keep_period,
        step_format_fixed_length=STEP_DIGITS,
        create=True,
        enable_async_checkpointing=False,
    )
    return ocp.CheckpointManager(
        (Path(run_dir) / CHECKPOINTS_DIR).absolute(),
        item_names=(PARAMS_ITEM, TRAIN_STATE_ITEM),
        options=options,
    )


def step_dir(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINTS_DIR / f"{step:0{STEP_DIGITS}d}"


def save_checkpoint(
    manager: ocp.CheckpointManager,
    step: int,
    *,
    params: Any,
    train_state: Any,
    config: TrainConfig,
    norm_stats: Mapping[str, NormStats],
    card: CheckpointCard | None,
    extra_config: Mapping[str, Any] | None = None,
) -> Path:
    """Write one checkpoint, its card and the files beside it; the retention rule then prunes old ones."""
    import orbax.checkpoint as ocp

    manager.save(
        step,
        args=ocp.args.Composite(
            **{
                PARAMS_ITEM: ocp.args.StandardSave(params),
                TRAIN_STATE_ITEM: ocp.args.StandardSave(train_state),
            }
        ),
        force=True,
    )
    manager.wait_until_finished()
    directory = Path(manager.directory) / f"{step:0{STEP_DIGITS}d}"
    payload = {**config.to_dict(), **(dict(extra_config) if extra_config else {})}
    (directory / CONFIG_FILE).write_text(json.dumps(payload, indent=2))
    save_norm_stats(directory / ASSETS_DIR, norm_stats)
    if card is not None:
        replace(card, step=step).write(directory)
    return directory


def restore_items(directory: Path, targets: Mapping[str, Any]) -> dict[str, Any]:
    """Restore the named orbax items of one step folder onto the shapes/dtypes of ``targets``."""
    import jax
    import orbax.checkpoint as ocp

    restored = {}
    with ocp.StandardCheckpointer() as checkpointer:
        for name, target in targets.items():
            abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
            try:
                restored[name] = checkpointer.restore((Path(directory) / name).absolute(), abstract)
            except (FileNotFoundError, ValueError, KeyError, OSError) as error:
                first_line = str(error).splitlines()[0] if str(error) else ""
                raise CheckpointError(
                    f"checkpoint {directory} has unreadable {name!r} ({type(error).__name__}: {first_line}): "
                    "it is corrupt or from another config; use another step"
                ) from error
    return restored


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


def is_checkpoint_dir(path: Path) -> bool:
    return (path / CONFIG_FILE).is_file()


def find_checkpoints(path: Path) -> list[FoundCheckpoint]:
    """A run, its ``checkpoints/`` folder or one step folder → its checkpoints in step order."""
    return find_step_folders(path, is_checkpoint_dir, f"{CHECKPOINTS_DIR}/NNNNNN/{CONFIG_FILE} (jax_openpi)")


def read_card(argument: str) -> CheckpointCard | None:
    """The card training wrote into the step folder (``libs.policy_api.registry``)."""
    return CheckpointCard.read(resolve_checkpoint_dir(argument))
