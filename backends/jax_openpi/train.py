"""Train the Pi0-style JAX policy on a LeRobot v3 dataset.

    ./pants run backends/jax_openpi:compute_norm_stats -- --config so101_cpu --dataset DATA --out RUN
    ./pants run backends/jax_openpi:train -- --config so101_cpu --dataset DATA --steps 2000 --out RUN

AdamW with warmup + cosine decay (openpi's defaults), optional EMA of the weights, orbax checkpoints under
``RUN/checkpoints/NNNNNN/`` with a retention rule, resume from the last checkpoint, JAX's persistent
compilation cache, a progress bar with loss and steps/s, and ``RUN/metrics.csv``. Training refuses to
start without ``RUN/assets/norm_stats.json``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import functools
import itertools
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from tqdm import tqdm

from backends.jax_openpi import checkpoints
from backends.jax_openpi.compilation_cache import enable_compilation_cache
from backends.jax_openpi.config import CONFIGS, ConfigError, TrainConfig, get_config
from backends.jax_openpi.data import (
    TrainingArrays,
    compute_norm_stats,
    load_training_arrays,
)
from backends.jax_openpi.model import Observation
from backends.jax_openpi.model_io import model_actions, model_observation, model_pipeline
from backends.jax_openpi.norm_stats import (
    NORM_STATS_FILE,
    NormStats,
    load_norm_stats,
    save_norm_stats,
)
from backends.jax_openpi.train_state import (
    Params,
    TrainState,
    TrainStep,
    init_model,
    learning_rate_schedule,
    make_train_step,
    new_train_state,
    restore_train_state,
)
from libs.compute_threads import THREADS_HELP, decide_and_apply
from libs.config_flags import add_flags, config_from_flags, flag, flag_fields, flag_name
from libs.datasets import preflight
from libs.errors import LabError, one_line_errors

METRICS_FILE = "metrics.csv"
METRICS_COLUMNS = ("step", "loss", "grad_norm", "learning_rate", "steps_per_s", "elapsed_s")


class TrainError(LabError, RuntimeError):
    """Training cannot start or go on; the message names the fix."""


#: The errors compute_norm_stats' main reports in one line: every bad input is a LabError (an unknown config
#: name too).
KNOWN_ERRORS: tuple[type[Exception], ...] = (LabError,)


def norm_stats_command(config: TrainConfig, dataset: Path | str, out: Path | str) -> str:
    return (
        f"compute them with `./pants run backends/jax_openpi:compute_norm_stats -- --config {config.name} "
        f"--dataset {dataset} --out {out}` (or pass --compute-norm-stats to train)"
    )


class BatchSampler:
    """Random batches with a generator seeded by (seed, step): a resumed run sees the same batches.

    The input pipeline runs once over every frame at construction (it is per-frame arithmetic, and run per
    batch in float64 it cost a state model about as much as its train step); a batch is then indexing."""

    def __init__(self, arrays: TrainingArrays, config: TrainConfig, norm_stats: Mapping[str, NormStats]):
        self.arrays, self.config = arrays, config
        self.pipeline = model_pipeline(config, norm_stats, resize=False)  # images are resized at load
        everything = self.pipeline(arrays.samples(slice(None)))  # images pass through as views, uncopied
        self._model_arrays = {
            key: value if value.dtype == np.uint8 else value.astype(np.float32)
            for key, value in everything.items()
            if isinstance(value, np.ndarray)
        }

    def model_sample(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        """Frames ``indices`` as the model sees them (after the input pipeline)."""
        return {key: value[indices] for key, value in self._model_arrays.items()}

    def batch(self, step: int) -> tuple[Observation, np.ndarray]:
        rng = np.random.default_rng([self.config.seed, step])
        sample = self.model_sample(rng.integers(0, len(self.arrays), self.config.batch_size))
        return model_observation(sample), model_actions(sample)


def _append_metrics(path: Path, row: Mapping[str, float | int]) -> None:
    new = not path.exists()
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=METRICS_COLUMNS)
        if new:
            writer.writeheader()
        writer.writerow({key: row[key] for key in METRICS_COLUMNS})


def _preflight_disk(out: Path, config: TrainConfig, params: Params, steps: int, report: bool) -> None:
    """The datasets library's disk preflight, before step 0: the retained checkpoints must fit."""
    parameters = sum(int(leaf.size) for leaf in jax.tree.leaves(params))
    copies = 1 + 2 + (1 if config.ema_decay is not None else 0)  # weights, Adam's two moments, EMA
    kept_by_period = steps // config.keep_period if config.keep_period else 0
    try:
        plan = preflight.plan_disk(
            out,
            preflight.checkpoint_bytes_estimate(parameters, optimizer_slots=copies - 1),
            total_steps=steps,
            save_every=config.save_interval,
            keep_last=config.keep_last + kept_by_period,
        )
        preflight.check_disk(plan, report=tqdm.write if report else None)
    except preflight.PreflightError as error:
        raise TrainError(str(error)) from error


def train(
    config: TrainConfig,
    dataset: Path | str,
    out: Path | str,
    steps: int,
    *,
    resume: bool = True,
    progress: bool = True,
    arrays: TrainingArrays | None = None,
    compute_missing_norm_stats: bool = False,
    probe_loader: bool = False,
) -> TrainState:
    """Train for ``steps`` total steps (a resumed run continues to the same total).

    Refuses to start without ``out/assets/norm_stats.json`` unless ``compute_missing_norm_stats`` asks
    for them to be computed from this dataset first."""
    dataset, out = Path(dataset), Path(out)
    if compute_missing_norm_stats:
        arrays = _compute_missing_norm_stats(config, dataset, out, arrays, progress)
    norm_stats = _norm_stats_for(config, dataset, out)
    enable_compilation_cache()
    graphdef, params = init_model(config, config.seed)
    _preflight_disk(out, config, params, steps, report=progress)
    arrays = arrays if arrays is not None else load_training_arrays(dataset, config, progress=progress)
    sampler = BatchSampler(arrays, config, norm_stats)
    state = new_train_state(config, params)
    manager = checkpoints.checkpoint_manager(out, config)
    if resume:
        state = _resumed(state, manager, out, config)
    train_step = make_train_step(graphdef, config)
    base_key = jax.random.key(config.seed)
    if probe_loader:
        _probe_loader(sampler, train_step, state, base_key, report=print if progress else None)
    writer = _CheckpointWriter(manager, config, norm_stats, dataset, _extra_config(arrays))
    step = functools.partial(_train_one_step, sampler=sampler, train_step=train_step, base_key=base_key)
    metrics = _MetricsLog(out / METRICS_FILE, learning_rate_schedule(config), state.step)
    _train_until(state, steps, config, step, metrics, writer, progress)
    manager.close()
    return state


def _compute_missing_norm_stats(
    config: TrainConfig, dataset: Path, out: Path, arrays: TrainingArrays | None, progress: bool
) -> TrainingArrays | None:
    """Writes ``out/assets/norm_stats.json`` from ``dataset`` when it is missing; the arrays it loaded for
    them (or ``arrays`` as given), so that training does not decode the dataset twice."""
    if (out / checkpoints.ASSETS_DIR / NORM_STATS_FILE).is_file():
        return arrays
    arrays = arrays if arrays is not None else load_training_arrays(dataset, config, progress=progress)
    save_norm_stats(out / checkpoints.ASSETS_DIR, compute_norm_stats(arrays, config))
    return arrays


def _norm_stats_for(config: TrainConfig, dataset: Path, out: Path) -> dict[str, NormStats]:
    """The run's norm stats, refused (one line naming the fix) when missing or unable to feed ``config``."""
    norm_stats = load_norm_stats(
        out / checkpoints.ASSETS_DIR, how_to_make=norm_stats_command(config, dataset, out)
    )
    model_pipeline(config, norm_stats, resize=False)  # stats that cannot feed this config stop us here
    return norm_stats


def _resumed(state: TrainState, manager: ocp.CheckpointManager, out: Path, config: TrainConfig) -> TrainState:
    """The run's last checkpoint restored into ``state``'s shapes, or ``state`` when it has none."""
    latest = manager.latest_step()
    if latest is None:
        return state
    _check_same_model(checkpoints.step_dir(out, latest), config)
    return restore_train_state(checkpoints.step_dir(out, latest), config, state)


def _check_same_model(checkpoint: Path, config: TrainConfig) -> None:
    """A run resumes only with the model it was trained with: a config whose model changed since (e.g. a
    named config redefined between versions) would meet orbax's shape errors halfway through restoring."""
    try:
        saved = checkpoints.load_config(checkpoint).model
    except checkpoints.CheckpointError:
        return  # no readable config: restoring names what is wrong with the checkpoint
    if saved != config.model:
        changed = sorted(
            name for name, value in dataclasses.asdict(config.model).items() if getattr(saved, name) != value
        )
        raise TrainError(
            f"{checkpoint} was trained with another model than config {config.name!r} builds now (differs in "
            f"{', '.join(changed)}): pass --no-resume to start over in it, or a new --out"
        )


def _probe_loader(
    sampler: BatchSampler, train_step: Any, state: TrainState, key: Any, report: Any, batches: int = 20
) -> preflight.LoaderProbe:
    """The preflight's loader probe for this backend: batches/s of the in-memory sampler (it has no worker
    processes: the dataset is decoded once before training) against the jitted train step's time."""

    def make_loader(workers: int) -> Iterator[dict[str, Any]]:
        for index in itertools.count():
            observation, actions = sampler.batch(index)
            yield {"actions": actions, "observation": observation}

    def step(batch: dict[str, Any]) -> None:
        # The train step donates its state buffers: give it copies so the real state is untouched.
        copies = jax.tree.map(jnp.copy, (state.params, state.opt_state, state.ema))
        outputs = train_step(*copies, key, batch["observation"], batch["actions"])
        jax.block_until_ready(outputs)

    probe = preflight.probe_data_loader(make_loader, worker_counts=(0,), batches=batches, step=step)
    if report is not None:
        report("preflight data loader (in-memory sampler, no worker processes):\n" + probe.table())
    return probe


def _extra_config(arrays: TrainingArrays) -> dict[str, Any]:
    """What a checkpoint's config.json records about the data beyond the config: the cameras' image size
    before resizing and the task prompt."""
    source_size = arrays.source_image_size
    return {"source_image_size": list(source_size) if source_size else None, "prompt": arrays.prompt}


def _train_one_step(
    state: TrainState, *, sampler: BatchSampler, train_step: TrainStep, base_key: jax.Array
) -> dict[str, jax.Array]:
    """One optimiser step on the batch of ``state.step`` (in place); the step's loss and gradient norm."""
    observation, actions = sampler.batch(state.step)
    state.params, state.opt_state, state.ema, info = train_step(
        state.params,
        state.opt_state,
        state.ema,
        jax.random.fold_in(base_key, state.step),
        observation,
        actions,
    )
    state.step += 1
    return info


def _train_until(
    state: TrainState,
    steps: int,
    config: TrainConfig,
    step: Callable[[TrainState], dict[str, jax.Array]],
    metrics: _MetricsLog,
    writer: _CheckpointWriter,
    progress: bool,
) -> None:
    """Steps until ``steps``, logging every ``log_interval`` and saving every ``save_interval`` steps (and
    both at the last step)."""
    bar = tqdm(
        total=steps, initial=state.step, desc=f"train {config.name}", unit="step", disable=not progress
    )
    while state.step < steps:
        info = step(state)
        bar.update(1)
        if state.step % config.log_interval == 0 or state.step == steps:
            loss, rate = metrics.record(state.step, info)
            bar.set_postfix(loss=f"{loss:.4f}", steps_per_s=f"{rate:.2f}")
        if state.step % config.save_interval == 0 or state.step == steps:
            writer.save(state)
    bar.close()


class _MetricsLog:
    """``RUN/metrics.csv``: a row per log interval, with the steps/s since the row before."""

    def __init__(self, path: Path, schedule: optax.Schedule, first_step: int):
        self.path, self.schedule = path, schedule
        self.started = self.last_time = time.monotonic()
        self.last_step = first_step

    def record(self, step: int, info: Mapping[str, jax.Array]) -> tuple[float, float]:
        """Appends step ``step``'s row; its loss and steps/s. A loss that is not finite stops the run."""
        loss = float(info["loss"])
        if not np.isfinite(loss):
            raise TrainError(f"loss became {loss} at step {step}: lower --peak-lr or check the norm stats")
        now = time.monotonic()
        rate = (step - self.last_step) / max(now - self.last_time, 1e-9)
        self.last_time, self.last_step = now, step
        row = {
            "step": step,
            "loss": loss,
            "grad_norm": float(info["grad_norm"]),
            "learning_rate": float(self.schedule(step)),
            "steps_per_s": rate,
            "elapsed_s": now - self.started,
        }
        _append_metrics(self.path, row)
        return loss, rate


@dataclass(frozen=True)
class _CheckpointWriter:
    """Saves a step's weights, train state, config, norm stats and card under ``RUN/checkpoints/``."""

    manager: ocp.CheckpointManager  # it applies the retention rule
    config: TrainConfig
    norm_stats: Mapping[str, NormStats]
    dataset: Path
    extra_config: dict[str, Any]

    def save(self, state: TrainState) -> None:
        inference, train_state = state.orbax_items()
        checkpoints.save_checkpoint(
            self.manager,
            state.step,
            params=inference,
            train_state=train_state,
            config=self.config,
            norm_stats=self.norm_stats,
            dataset_root=self.dataset,
            extra_config=self.extra_config,
        )


# -- command line ----------------------------------------------------------------------------------------
#: The TrainConfig fields a train command may override (each a TrainCommand field of the same name).
CONFIG_OVERRIDES = (
    "batch_size",
    "peak_lr",
    "decay_steps",
    "save_interval",
    "keep_last",
    "keep_period",
    "seed",
)
#: Flags that count something: 0 or less is a mistake (a run that never saves, an empty batch...).
_AT_LEAST_ONE = ("steps", "batch_size", "decay_steps", "save_interval", "keep_last", "keep_period")


@dataclass(frozen=True)
class TrainCommand:
    """The train command: a named config, the data, the run folder, how far to train, and the config's
    settings this run overrides (None: the named config's). Each field is one flag, its name written out so
    that the docs' commands can be checked against this source."""

    config: str = field(metadata=flag(" | ".join(CONFIGS), required=True, name="--config"))
    dataset: Path = field(metadata=flag("LeRobot v3 dataset folder", required=True, name="--dataset"))
    out: Path = field(
        metadata=flag("run folder (checkpoints/, assets/, metrics.csv)", required=True, name="--out")
    )
    steps: int = field(
        metadata=flag(
            "total optimiser steps (a resumed run goes on to this total)", required=True, name="--steps"
        )
    )
    batch_size: int | None = field(default=None, metadata=flag("default: the config's", name="--batch-size"))
    peak_lr: float | None = field(
        default=None,
        metadata=flag("learning rate after the warm-up (default: the config's)", name="--peak-lr"),
    )
    decay_steps: int | None = field(
        default=None, metadata=flag("steps of the cosine decay to end_lr", name="--decay-steps")
    )
    save_interval: int | None = field(
        default=None, metadata=flag("checkpoint every N steps (and at the last)", name="--save-interval")
    )
    keep_last: int | None = field(
        default=None,
        metadata=flag("checkpoints kept: the last N, plus every --keep-period-th", name="--keep-last"),
    )
    keep_period: int | None = field(
        default=None, metadata=flag("keep every N-th step's checkpoint too", name="--keep-period")
    )
    seed: int | None = field(
        default=None, metadata=flag("the model's initialisation, batches and noise", name="--seed")
    )
    ema: bool = field(default=True, metadata=flag("train without an EMA of the weights", name="--no-ema"))
    resume: bool = field(
        default=True, metadata=flag("ignore checkpoints already in --out", name="--no-resume")
    )
    compute_norm_stats: bool = field(
        default=False,
        metadata=flag(
            "compute OUT/assets/norm_stats.json from --dataset first when it is missing",
            name="--compute-norm-stats",
        ),
    )
    probe_loader: bool = field(
        default=False,
        metadata=flag(
            "before step 0, time the data pipeline against a train step and say which one bounds the run",
            name="--probe-loader",
        ),
    )
    #: None: decided from the free cores (libs.compute_threads), set before XLA's CPU backend starts
    threads: int | None = field(default=None, metadata=flag(THREADS_HELP, name="--threads"))

    def __post_init__(self) -> None:
        for name in _AT_LEAST_ONE:
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{_flag_of(name)} {value}: give at least 1")
        if self.peak_lr is not None and not self.peak_lr > 0:
            raise ConfigError(f"--peak-lr {self.peak_lr}: give a learning rate above 0")
        if self.seed is not None and self.seed < 0:
            raise ConfigError(f"--seed {self.seed}: give 0 or more")

    def train_config(self) -> TrainConfig:
        """The named config with this command's overrides."""
        config = get_config(self.config)
        overrides = {
            name: getattr(self, name) for name in CONFIG_OVERRIDES if getattr(self, name) is not None
        }
        if not self.ema:
            overrides["ema_decay"] = None
        return config.replace(**overrides) if overrides else config


def _flag_of(name: str) -> str:
    """The train command's flag for TrainCommand field ``name``."""
    return next(
        flag_name(spec_field, spec)
        for spec_field, spec, _ in flag_fields(TrainCommand)
        if spec_field.name == name
    )


def build_parser() -> argparse.ArgumentParser:
    """The train command's flags: TrainCommand's, in its order."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_flags(parser, TrainCommand)
    return parser


@one_line_errors
def main(argv: Sequence[str] | None = None) -> int:
    command: TrainCommand = config_from_flags(TrainCommand, build_parser().parse_args(argv))
    decide_and_apply(1, command.threads)  # jax is imported, but XLA reads NPROC and XLA_FLAGS at first use
    state = train(
        command.train_config(),
        command.dataset,
        command.out,
        command.steps,
        resume=command.resume,
        compute_missing_norm_stats=command.compute_norm_stats,
        probe_loader=command.probe_loader,
    )
    print(f"trained to step {state.step}; checkpoints in {command.out / checkpoints.CHECKPOINTS_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
