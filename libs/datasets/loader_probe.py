"""The data-loader probe of the training preflight: samples per second for several ``num_workers`` against
the model's step time, and the worker count to use (``probe_data_loader``). Its own module so that the
preflight and the episode-decoding loader (``libs.datasets.fast_loader``) both use it without importing each
other."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from libs.errors import LabError


class PreflightError(LabError, RuntimeError):
    """The run cannot start as configured; the message has the numbers and the fix."""


@dataclass(frozen=True)
class LoaderTiming:
    num_workers: int
    samples_per_s: float
    batch_time_s: float
    startup_s: float


@dataclass
class LoaderProbe:
    timings: list[LoaderTiming]
    step_time_s: float | None
    batch_size: int
    recommended_workers: int = field(init=False)
    reason: str = field(init=False)

    def __post_init__(self) -> None:
        fastest = max(self.timings, key=lambda t: t.samples_per_s)
        if self.step_time_s is None:
            self.recommended_workers, self.reason = (
                fastest.num_workers,
                "the fastest loader (no model step timed)",
            )
            return
        keeping_up = [t for t in self.timings if t.batch_time_s <= self.step_time_s]
        if keeping_up:
            choice = min(keeping_up, key=lambda t: t.num_workers)
            self.recommended_workers = choice.num_workers
            self.reason = (
                f"fewest workers whose batches ({choice.batch_time_s * 1000:.1f} ms) arrive faster than a "
                f"model step ({self.step_time_s * 1000:.1f} ms)"
            )
        else:
            self.recommended_workers = fastest.num_workers
            self.reason = (
                f"no setting keeps up with the model ({self.step_time_s * 1000:.1f} ms/step, best loader "
                f"{fastest.batch_time_s * 1000:.1f} ms/batch): the run is data-bound; use image mode, "
                "smaller images or more CPU cores"
            )

    def table(self) -> str:
        lines = [f"{'num_workers':>11} {'samples/s':>10} {'ms/batch':>9} {'startup s':>9}"]
        for timing in self.timings:
            lines.append(
                f"{timing.num_workers:>11} {timing.samples_per_s:>10.1f} {timing.batch_time_s * 1000:>9.1f} "
                f"{timing.startup_s:>9.2f}"
            )
        if self.step_time_s is not None:
            lines.append(f"model step: {self.step_time_s * 1000:.1f} ms for a batch of {self.batch_size}")
        lines.append(f"recommended num_workers={self.recommended_workers}: {self.reason}")
        return "\n".join(lines)


def _batch_size_of(batch: Any) -> int:
    if isinstance(batch, dict):
        batch = next(iter(batch.values()))
    shape = getattr(batch, "shape", None)
    if shape:
        return int(shape[0])
    return len(batch) if hasattr(batch, "__len__") else 1


def probe_data_loader(
    make_loader: Callable[[int], Iterable[Any]],
    worker_counts: Sequence[int] = (0, 2, 4),
    batches: int = 10,
    warmup_batches: int = 2,
    step: Callable[[Any], Any] | None = None,
    step_repeats: int = 3,
) -> LoaderProbe:
    """Samples/s of ``make_loader(num_workers)`` for each count, and the model's ``step(batch)`` time."""
    timings = []
    sample_batch: Any = None
    batch_size = 1
    for workers in worker_counts:
        started = time.perf_counter()
        iterator = iter(make_loader(workers))
        for _ in range(warmup_batches):
            sample_batch = next(iterator)
        startup = time.perf_counter() - started
        samples = 0
        timed_batches = 0
        started = time.perf_counter()
        for batch in iterator:
            batch_size = _batch_size_of(batch)
            samples += batch_size
            timed_batches += 1
            if timed_batches >= batches:
                break
        elapsed = max(time.perf_counter() - started, 1e-9)
        if timed_batches == 0:
            raise PreflightError(
                f"the loader with num_workers={workers} yielded only {warmup_batches} batches: use a larger "
                "dataset or fewer probe batches"
            )
        del iterator
        timings.append(LoaderTiming(workers, samples / elapsed, elapsed / timed_batches, startup))
    step_time = None
    if step is not None and sample_batch is not None:
        step(sample_batch)  # compile / warm up
        started = time.perf_counter()
        for _ in range(step_repeats):
            step(sample_batch)
        step_time = (time.perf_counter() - started) / step_repeats
    return LoaderProbe(timings, step_time, batch_size)
