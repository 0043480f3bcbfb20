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
import itertools
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from backends.jax_openpi import checkpoints
from backends.jax_openpi.compilation_cache import enable_compilation_cache
from backends.jax_openpi.config import CONFIGS, TrainConfig, UnknownConfigError, get_config
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
    init_model,
    learning_rate_schedule,
    make_train_step,
    new_train_state,
    restore_train_state,
)
from libs.datasets import preflight
from libs.errors import LabError

METRICS_FILE = "metrics.csv"
METRICS_COLUMNS = ("step", "loss", "grad_norm", "learning_rate", "steps_per_s", "elapsed_s")


class TrainError(LabError, RuntimeError):
    """Training cannot start or go on; the message names the fix."""


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
    if compute_missing_norm_stats and not (out / checkpoints.ASSETS_DIR / NORM_STATS_FILE).is_file():
        arrays = arrays if arrays is not None else load_training_arrays(dataset, config, progress=progress)
        save_norm_stats(out / checkpoints.ASSETS_DIR, compute_norm_stats(arrays, config))
    norm_stats = load_norm_stats(
        out / checkpoints.ASSETS_DIR, how_to_make=norm_stats_command(config, dataset, out)
    )
    model_pipeline(config, norm_stats, resize=False)  # stats that cannot feed this config stop us here
    enable_compilation_cache()
    graphdef, params = init_model(config, config.seed)
    _preflight_disk(out, config, params, steps, report=progress)
    arrays = arrays if arrays is not None else load_training_arrays(dataset, config, progress=progress)
    sampler = BatchSampler(arrays, config, norm_stats)
    source_size = arrays.source_image_size
    extra_config = {"source_image_size": list(source_size) if source_size else None, "prompt": arrays.prompt}

    state = new_train_state(config, params)
    manager = checkpoints.checkpoint_manager(out, config)
    latest = manager.latest_step() if resume else None
    if latest is not None:
        _check_same_model(checkpoints.step_dir(out, latest), config)
        state = restore_train_state(checkpoints.step_dir(out, latest), config, state)
    train_step = make_train_step(graphdef, config)
    schedule = learning_rate_schedule(config)
    base_key = jax.random.key(config.seed)
    if probe_loader:
        _probe_loader(sampler, train_step, state, base_key, report=print if progress else None)
    metrics_path = out / METRICS_FILE

    bar = tqdm(
        total=steps, initial=state.step, desc=f"train {config.name}", unit="step", disable=not progress
    )
    started, last_log_time, last_log_step = time.monotonic(), time.monotonic(), state.step
    while state.step < steps:
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
        bar.update(1)
        if state.step % config.log_interval == 0 or state.step == steps:
            loss = float(info["loss"])
            if not np.isfinite(loss):
                raise TrainError(
                    f"loss became {loss} at step {state.step}: lower --peak-lr or check the norm stats"
                )
            now = time.monotonic()
            rate = (state.step - last_log_step) / max(now - last_log_time, 1e-9)
            last_log_time, last_log_step = now, state.step
            bar.set_postfix(loss=f"{loss:.4f}", steps_per_s=f"{rate:.2f}")
            _append_metrics(
                metrics_path,
                {
                    "step": state.step,
                    "loss": loss,
                    "grad_norm": float(info["grad_norm"]),
                    "learning_rate": float(schedule(state.step)),
                    "steps_per_s": rate,
                    "elapsed_s": now - started,
                },
            )
        if state.step % config.save_interval == 0 or state.step == steps:
            inference, train_state = state.orbax_items()
            checkpoints.save_checkpoint(
                manager,
                state.step,
                params=inference,
                train_state=train_state,
                config=config,
                norm_stats=norm_stats,
                dataset_root=dataset,
                extra_config=extra_config,
            )
    bar.close()
    manager.close()
    return state


# -- command line ----------------------------------------------------------------------------------------
def _config_with_overrides(args: argparse.Namespace) -> TrainConfig:
    config = get_config(args.config)
    overrides = {
        name: getattr(args, name)
        for name in (
            "batch_size",
            "peak_lr",
            "decay_steps",
            "save_interval",
            "keep_last",
            "keep_period",
            "seed",
        )
        if getattr(args, name, None) is not None
    }
    if args.no_ema:
        overrides["ema_decay"] = None
    return config.replace(**overrides) if overrides else config


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


def _common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help=" | ".join(CONFIGS))
    parser.add_argument("--dataset", required=True, type=Path, help="LeRobot v3 dataset folder")
    parser.add_argument(
        "--out", required=True, type=Path, help="run folder (checkpoints/, assets/, metrics.csv)"
    )


#: UnknownConfigError is a KeyError (a config looked up by name); every other bad input is a LabError.
KNOWN_ERRORS = (LabError, UnknownConfigError)


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the Pi0-style JAX policy (openpi recipe).")
    _common_arguments(parser)
    parser.add_argument("--steps", required=True, type=int, help="total optimiser steps")
    parser.add_argument("--batch-size", dest="batch_size", type=int)
    parser.add_argument("--peak-lr", dest="peak_lr", type=float)
    parser.add_argument(
        "--decay-steps", dest="decay_steps", type=int, help="steps of the cosine decay to end_lr"
    )
    parser.add_argument("--save-interval", dest="save_interval", type=int)
    parser.add_argument("--keep-last", dest="keep_last", type=int)
    parser.add_argument("--keep-period", dest="keep_period", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--no-ema", action="store_true", help="train without an EMA of the weights")
    parser.add_argument("--no-resume", action="store_true", help="ignore checkpoints already in --out")
    parser.add_argument(
        "--compute-norm-stats",
        action="store_true",
        help="compute OUT/assets/norm_stats.json from --dataset first when it is missing",
    )
    parser.add_argument(
        "--probe-loader",
        action="store_true",
        help="before step 0, time the data pipeline against a train step and say which one bounds the run",
    )
    args = parser.parse_args(argv)
    try:
        state = train(
            _config_with_overrides(args),
            args.dataset,
            args.out,
            args.steps,
            resume=not args.no_resume,
            compute_missing_norm_stats=args.compute_norm_stats,
            probe_loader=args.probe_loader,
        )
    except KNOWN_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"trained to step {state.step}; checkpoints in {args.out / checkpoints.CHECKPOINTS_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
