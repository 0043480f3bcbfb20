"""What both evaluation-speed benchmarks share (``eval_speed.py``: LeRobot policies; ``eval_speed_jax.py``:
the JAX policy, in its own resolve): the harness modes, each policy's physical limit, the peak RSS of each
row and the table.

The limit of a policy is what one episode costs with nothing but the physics and the policy: the episode's
control steps and the camera images the policy reads, stepped and drawn with no policy (``sim_only``), plus
one inference per chunk the policy computed in the harness, each timed alone on an observation already in
memory (``inference_alone``). Peak RSS is the process's high-water mark during the row: reset before
(``/proc/self/clear_refs``) and read after (``VmHWM``), so each row's figure is its own.
"""

from __future__ import annotations

import dataclasses
import os
import re
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

HARNESS_MODES = ("eager", "on_demand", "on_demand_batched")
LEROBOT_EVAL = "lerobot_eval"
STATE_KEY = "observation.state"


@dataclasses.dataclass(frozen=True)
class Limit:
    """One round's limit of a policy, per episode."""

    sim_s: float
    inferences: float
    inference_s: float

    @property
    def seconds(self) -> float:
        return self.sim_s + self.inferences * self.inference_s


@dataclasses.dataclass
class Rows:
    """Every measured value, one per round: seconds per episode and peak RSS per (policy, mode), limits per
    policy; ``labels`` describe the policies."""

    seconds: dict[tuple[str, str], list[float]] = dataclasses.field(default_factory=dict)
    peak_rss_mib: dict[tuple[str, str], list[float]] = dataclasses.field(default_factory=dict)
    limits: dict[str, list[Limit]] = dataclasses.field(default_factory=dict)
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    #: per policy, over rounds: (episodes whose outcome lockstep left unchanged, whose length too, episodes)
    lockstep_same: dict[str, list[tuple[int, int, int]]] = dataclasses.field(default_factory=dict)

    def add(self, name: str, mode: str, seconds: float, peak_rss_mib: float) -> None:
        self.seconds.setdefault((name, mode), []).append(seconds)
        self.peak_rss_mib.setdefault((name, mode), []).append(peak_rss_mib)


# --- peak RSS -----


@contextmanager
def peak_rss() -> Iterator[list[float]]:
    """Yields a list that holds, after the block, the process's peak RSS in MiB during it."""
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
    found: list[float] = []
    yield found
    match = re.search(r"VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text())
    found.append(int(match.group(1)) / 1024 if match else float("nan"))


def release_freed_memory() -> None:
    """Give freed heap back to the OS (glibc keeps it otherwise), so the next row starts from what is live."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


# --- the harness -----


def make_env(policy: Any, max_steps: int, image_rendering: str) -> Any:
    """The policy's training scene with its cameras, counting the camera images it draws (``draws``)."""
    from libs.sim.draw_counting_env import DrawCountingEnv
    from libs.sim.scene_config import SceneConfig

    scene = SceneConfig.from_dict(policy.card.scene)
    scene = scene.with_cameras([camera.name for camera in policy.spec.cameras])
    return DrawCountingEnv(scene=scene, max_steps=max_steps, image_rendering=image_rendering)


def warm_up(env: Any, policy: Any) -> None:
    """A reset and one image per camera, outside the timing: renderers and GL contexts exist afterwards."""
    observation, _ = env.reset(seed=0)
    for camera in policy.spec.cameras:
        np.asarray(observation[camera.key])
    env.draws = 0


@dataclasses.dataclass(frozen=True)
class HarnessRun:
    seconds_per_episode: float
    steps: list[int]
    #: camera images drawn, over all episodes
    draws: int
    #: chunks the policy computed, over all episodes
    predictions: int
    #: (outcome, steps) of each episode, in seed order
    outcomes: list[tuple[str, int]]
    #: one at a time: each episode's executed actions, and before which steps the policy's images were drawn
    tapes: list[tuple[list[np.ndarray], list[bool]]] = dataclasses.field(default_factory=list)


class _Tape:
    """An episode observer keeping what ``sim_only_seconds`` replays: the executed actions and the steps
    before which camera images were drawn."""

    def __init__(self) -> None:
        self.episodes: list[tuple[list[np.ndarray], list[bool]]] = []
        self._draws = 0

    def on_reset(self, env: Any, seed: int) -> None:
        self.episodes.append(([], []))
        self._draws = env.draws

    def on_step(self, event: Any) -> None:
        actions, reads = self.episodes[-1]
        actions.append(np.array(event.action, copy=True))
        reads.append(event.env.draws > self._draws)
        self._draws = event.env.draws


def harness_run(
    policy: Any, seeds: Sequence[int], max_steps: int, mode: str, predictions: Callable[[], int]
) -> HarnessRun:
    """The episodes through the harness (contract checks included), the policy already loaded;
    ``predictions()`` is a running count of the chunks the policy computed."""
    from libs.evaluation.play.evaluated_episode import evaluate_episode, evaluate_lockstep
    from libs.sim.play.episode import EpisodeStart

    stats = policy.card.action_stats
    batched = mode == "on_demand_batched"
    rendering = "eager" if mode == "eager" else "on_demand"
    envs = [make_env(policy, max_steps, rendering) for _ in (seeds if batched else seeds[:1])]
    tape = _as_observer(_Tape())
    try:
        for env in envs:
            warm_up(env, policy)
        before = predictions()
        started = time.perf_counter()
        if batched:
            starts = [EpisodeStart(seed) for seed in seeds]
            results = evaluate_lockstep(policy, envs, starts, action_stats=stats)
        else:
            results = [
                evaluate_episode(policy, envs[0], seed, action_stats=stats, observers=[tape])
                for seed in seeds
            ]
        seconds = (time.perf_counter() - started) / len(seeds)
        return HarnessRun(
            seconds,
            [result.record.steps for result in results],
            sum(env.draws for env in envs),
            predictions() - before,
            [(result.record.outcome, result.record.steps) for result in results],
            tape.episodes,
        )
    finally:
        for env in envs:
            env.close()


def _as_observer(tape: _Tape) -> Any:
    """``tape`` as a ``libs.sim.play.observers.EpisodeObserver`` (imported late, as the env is)."""
    from libs.sim.play.observers import EpisodeObserver

    class TapeObserver(_Tape, EpisodeObserver):
        pass

    return TapeObserver()


def counting_infer_batch(policy: Any) -> Callable[[], int]:
    """Counts the observations handed to ``policy.infer_batch`` (``infer`` goes through it): the chunks of a
    policy that computes one for every call (the JAX policy)."""
    count = [0]
    original = policy.infer_batch

    def counted(observations: Sequence[Any], episodes: Sequence[Any]) -> Any:
        count[0] += len(observations)
        return original(observations, episodes)

    policy.infer_batch = counted
    return lambda: count[0]


# --- the limit -----


def sim_only_seconds(policy: Any, seeds: Sequence[int], run: HarnessRun, max_steps: int) -> float:
    """Seconds per episode of the physics alone: each seed's episode replayed from its executed actions,
    drawing the policy's camera images before the same steps (a run without tapes, lockstep: the arm held
    where it starts for the episode's length, as many images as the policy read, spread over it)."""
    keys = [camera.key for camera in policy.spec.cameras]
    tapes = run.tapes or _held_arm_tapes(run, len(keys))
    env = make_env(policy, max_steps, "on_demand")
    try:
        warm_up(env, policy)
        started = time.perf_counter()
        for seed, (actions, reads) in zip(seeds, tapes, strict=True):
            observation, _ = env.reset(seed=seed)
            if actions is None:  # held where it starts
                actions = [np.array(observation[STATE_KEY], dtype=np.float32)] * len(reads)
            for action, read in zip(actions, reads, strict=True):
                if read:
                    for key in keys:
                        np.asarray(observation[key])
                del observation  # one still held makes the env copy its moment before stepping on
                observation, *_ = env.step(action)
        return (time.perf_counter() - started) / len(seeds)
    finally:
        env.close()


def _held_arm_tapes(run: HarnessRun, cameras: int) -> list[tuple[None, list[bool]]]:
    """Per episode: no actions (the arm is held) and the steps that read images, as many as the run read,
    spread evenly over its length."""
    frames_per_step = run.draws / max(1, cameras) / max(1, sum(run.steps))
    tapes = []
    for steps in run.steps:
        frames = int(round(frames_per_step * steps))
        read_at = set(np.linspace(0, steps - 1, frames).round().astype(int).tolist()) if frames else set()
        tapes.append((None, [step in read_at for step in range(steps)]))
    return tapes


def ready_observation(policy: Any, max_steps: int) -> dict[str, Any]:
    """An observation of the policy's scene with every image drawn."""
    env = make_env(policy, max_steps, "eager")
    try:
        observation, _ = env.reset(seed=0)
        return dict(observation)
    finally:
        env.close()


def warm_up_batches(policy: Any, max_steps: int, largest: int) -> None:
    """One batched call of every size up to ``largest`` (a JAX policy compiles its sampler per size)."""
    observation = ready_observation(policy, max_steps)
    for size in range(1, largest + 1):
        policy.infer_batch([observation] * size, [policy.new_episode(seed) for seed in range(size)])


def inference_alone_seconds(policy: Any, max_steps: int, repeats: int) -> float:
    """Median seconds of one chunk on an observation already drawn (a fresh episode each time, so every
    call computes a chunk); the first call (compilation, caches) is left out."""
    observation = ready_observation(policy, max_steps)
    times = []
    for _ in range(repeats + 1):
        np.random.seed(0)
        policy.reset()
        started = time.perf_counter()
        policy.infer(observation)
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def measure_harness_round(
    rows: Rows,
    name: str,
    policy: Any,
    seeds: Sequence[int],
    max_steps: int,
    modes: Sequence[str],
    predictions: Callable[[], int],
    round_label: str,
) -> None:
    """One round of ``policy``'s harness modes and its limit (the on-demand episodes' lengths, images read
    and chunks, or the first mode's; one chunk alone timed first, which also warms the policy up)."""
    inference_s = inference_alone_seconds(policy, max_steps, repeats=10)  # warms the policy up too
    if "on_demand_batched" in modes:
        warm_up_batches(policy, max_steps, len(seeds))
    runs: dict[str, HarnessRun] = {}
    for mode in modes:
        with peak_rss() as peak:
            runs[mode] = harness_run(policy, seeds, max_steps, mode, predictions)
        rows.add(name, mode, runs[mode].seconds_per_episode, peak[0])
        report(round_label, name, mode, runs[mode].seconds_per_episode, peak[0])
    basis = runs.get("on_demand") or next(iter(runs.values()))
    if "on_demand" in runs and "on_demand_batched" in runs:
        pairs = list(zip(runs["on_demand"].outcomes, runs["on_demand_batched"].outcomes, strict=True))
        same_outcome = sum(alone[0] == together[0] for alone, together in pairs)
        same = sum(alone == together for alone, together in pairs)
        rows.lockstep_same.setdefault(name, []).append((same_outcome, same, len(seeds)))
    sim_s = sim_only_seconds(policy, seeds, basis, max_steps)
    limit = Limit(sim_s, basis.predictions / len(seeds), inference_s)
    rows.limits.setdefault(name, []).append(limit)
    print(
        f"{round_label} {name:13s} limit: sim {limit.sim_s:.3f} s + {limit.inferences:.1f} × "
        f"{limit.inference_s * 1000:.1f} ms = {limit.seconds:.2f} s/episode",
        flush=True,
    )


def report(round_label: str, name: str, mode: str, seconds: float, rss_mib: float) -> None:
    print(
        f"{round_label} {name:13s} {mode:18s} {seconds:6.2f} s/episode  peak RSS {rss_mib:6.0f} MiB",
        flush=True,
    )


# --- the table -----


def _median_ratio(numerators: list[float], denominators: list[float]) -> float:
    return statistics.median(n / d for n, d in zip(numerators, denominators, strict=True))


def print_table(rows: Rows, modes: Sequence[str], title: str, notes: Sequence[str] = ()) -> None:
    """The rows (medians over rounds; ratios are medians of per-round ratios), then each limit's parts."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title)
    columns = ("policy", "mode", "s / episode", "episodes/min/core", "× lerobot-eval", "limit s", "÷ limit")
    for column in (*columns, "peak RSS MiB"):
        table.add_column(column, justify="left" if column in ("policy", "mode") else "right")
    for name, label in rows.labels.items():
        limits = [limit.seconds for limit in rows.limits.get(name, [])]
        for mode in modes:
            values = rows.seconds.get((name, mode))
            if not values:
                continue
            median = statistics.median(values)
            anchor = rows.seconds.get((name, LEROBOT_EVAL))
            table.add_row(
                escape(label),
                mode.replace("_", " "),
                f"{median:.2f}",
                f"{60.0 / median:.1f}",
                f"{_median_ratio(anchor, values):.2f}" if anchor and mode != LEROBOT_EVAL else "–",
                f"{statistics.median(limits):.2f}" if limits else "–",
                f"{_median_ratio(values, limits):.2f}" if len(limits) == len(values) else "–",
                f"{statistics.median(rows.peak_rss_mib[(name, mode)]):.0f}",
            )
    console = Console(width=160)
    console.print(table)
    parts = Table(title="Limit = sim only + chunks per episode × one chunk alone (medians over rounds)")
    for column in ("policy", "sim only s", "chunks / episode", "ms / chunk alone", "limit s"):
        parts.add_column(column, justify="left" if column == "policy" else "right")
    for name, label in rows.labels.items():
        limits = rows.limits.get(name, [])
        if limits:
            parts.add_row(
                escape(label),
                f"{statistics.median(limit.sim_s for limit in limits):.3f}",
                f"{statistics.median(limit.inferences for limit in limits):.1f}",
                f"{statistics.median(limit.inference_s for limit in limits) * 1000:.1f}",
                f"{statistics.median(limit.seconds for limit in limits):.2f}",
            )
    console.print(parts)
    for name, counts in rows.lockstep_same.items():
        outcomes, lengths, total = (sum(column) for column in zip(*counts, strict=True))
        print(
            f"{rows.labels[name]}: lockstep left {outcomes}/{total} episodes' outcome unchanged, "
            f"{lengths}/{total} their outcome and length"
        )
    for note in notes:
        print(note)


def load_line(before: tuple[float, float, float], after: tuple[float, float, float]) -> str:
    return (
        f"load average (1, 5, 15 min) before: {', '.join(f'{v:.2f}' for v in before)}; "
        f"after: {', '.join(f'{v:.2f}' for v in after)} on {os.cpu_count()} cores "
        f"(affinity: cores {sorted(os.sched_getaffinity(0))}; the machine is shared with other engineers)"
    )


def add_harness_arguments(parser: Any, workdir: str, policies: Sequence[str], modes: Sequence[str]) -> None:
    """The flags both speed benchmarks (torch and JAX resolves) share."""
    parser.add_argument("--workdir", type=Path, default=Path(workdir))
    parser.add_argument("--train-steps", type=int, default=200)
    parser.add_argument("--episodes", type=int, default=4, help="episodes per mode per round (= batch size)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--policies", default=",".join(policies))
    parser.add_argument("--modes", default=",".join(modes))


def print_table_so_far(rows: Rows, modes: Sequence[str], round_label: str) -> None:
    """The table after a round that is not the last, should the run be stopped early, with the load."""
    print_table(rows, modes, f"Seconds per episode after {round_label} (medians so far)")
    print(f"load average (1, 5, 15 min) now: {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
