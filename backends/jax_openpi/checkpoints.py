"""Checkpoint layout, mirroring LeRobot's: ``<run>/checkpoints/NNNNNN/`` holds

- ``params/``                 weights for inference (the EMA weights when EMA is on), orbax
- ``train_state/``            optimiser state (and the raw weights when EMA is on), orbax, for resuming
- ``config.json``             the TrainConfig the model and transforms are rebuilt from
- ``assets/norm_stats.json``  openpi-format normalisation stats
- ``card.json``                the checkpoint card: the training dataset's scene, stats, block positions and
                                features (``libs.policy_api.card``)

Orbax's CheckpointManager owns the step folders and the retention rule (keep the last ``keep_last`` plus
every ``keep_period``-th step), so a long run cannot fill the disk.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

from backends.jax_openpi.config import TrainConfig
from backends.jax_openpi.layout import CHECKPOINTS_DIR, CONFIG_FILE, STEP_DIGITS, CheckpointError
from backends.jax_openpi.norm_stats import NormStats, save_norm_stats
from libs.policy_api.card import card_from_dataset

ASSETS_DIR = "assets"
PARAMS_ITEM = "params"
TRAIN_STATE_ITEM = "train_state"


def checkpoint_manager(run_dir: Path, config: TrainConfig) -> ocp.CheckpointManager:
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
    dataset_root: Path | None,
    extra_config: Mapping[str, Any] | None = None,
) -> Path:
    """Write one checkpoint and the files beside it; the retention rule then prunes old ones."""
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
    if dataset_root is not None:
        card_from_dataset(dataset_root, step=step, task=payload.get("prompt")).write(directory)
    return directory


def restore_items(directory: Path, targets: Mapping[str, Any]) -> dict[str, Any]:
    """Restore the named orbax items of one step folder onto the shapes/dtypes of ``targets``."""
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


def read_json(path: Path) -> Any | None:
    """A JSON file beside a checkpoint (None when absent); a corrupt one is a one-line ``CheckpointError``."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path} is not valid JSON ({error}): the checkpoint is corrupt") from error


def load_config(directory: Path) -> TrainConfig:
    """The ``TrainConfig`` a step folder was saved with (``save_checkpoint`` writes it): loading, resuming."""
    path = directory / CONFIG_FILE
    data = read_json(path)
    if data is None:
        raise CheckpointError(
            f"{directory} has no {CONFIG_FILE}: pass a step folder written by jax_openpi:train"
        )
    try:
        return TrainConfig.from_dict(data)
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(
            f"{path} is not a jax_openpi config ({error}): the checkpoint is corrupt"
        ) from error
