"""Several episodes of one policy in lockstep, one ``infer_batch`` call for every observation due.

``run_episode`` plays one episode; a worker holding one checkpoint can instead step several envs together
and hand the policy every observation that needs a new chunk in one call (``BatchPolicy``: LeRobot and JAX
adapters). On a CPU that amortises each call's fixed cost (pre/post-processing, Python, small matrix
products); on a GPU it is the difference between an idle and a busy device. Each episode keeps its own
env, seed, reset (a fresh ``EpisodeState`` whose seed is drawn as ``policy.reset()`` would draw it), action
queue, contract checks and record, exactly as ``run_episode`` keeps them; an episode that ends leaves the
batch and the others go on. Sampling policies (Diffusion, flow matching) draw a batch's noise from their
global generator, so their sampled actions differ from a one-episode run's; a deterministic policy (ACT)
computes the same chunks up to the floating-point order of a batched matrix product.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from libs.evaluation.runner import (
    EpisodeResult,
    GridPlacementError,
    episode_record,
)
from libs.policy_api.contracts import (
    ContractViolation,
    UnsafeActionViolation,
    check_action_chunk,
    check_denormalized,
    check_normalized_inputs,
    check_observation,
)
from libs.policy_api.types import BatchPolicy, EpisodeState, Observation
from libs.sim.episode_signals import EpisodeSignals
from libs.sim.layout import JOINT_LOWER, JOINT_UPPER


@dataclass(frozen=True)
class LockstepEpisode:
    """One episode of a lockstep batch: its seed and, for ``--grid``, where the block goes."""

    seed: int
    block_xy: tuple[float, float] | None = None
    grid_cell: tuple[int, int] | None = None


@dataclass
class _Running:
    env: Any
    task: LockstepEpisode
    state: EpisodeState
    observation: Observation
    block_start: np.ndarray
    started: float
    queue: list[np.ndarray] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    chunks: list[tuple[int, np.ndarray]] = field(default_factory=list)
    steps: int = 0
    info: Mapping[str, Any] = field(default_factory=dict)
    violation: str | None = None
    result: EpisodeResult | None = None
    signals: EpisodeSignals | None = None


def supports_batches(policy: Any) -> bool:
    """True when ``policy`` (or the policy an ``EpisodeGuardedPolicy`` wraps) takes a batch per call."""
    return isinstance(getattr(policy, "inner", policy), BatchPolicy)


def run_lockstep(
    policy: Any,
    envs: Sequence[Any],
    episodes: Sequence[LockstepEpisode],
    *,
    checkpoint_id: str = "",
    step: int | None = None,
    action_stats: Mapping[str, Any] | None = None,
    keep_chunks: bool = False,
) -> list[EpisodeResult]:
    """Play ``episodes[i]`` in ``envs[i]``, all together (module docstring); results in the given order."""
    inner = getattr(policy, "inner", policy)
    if not isinstance(inner, BatchPolicy):
        raise ContractViolation(
            f"{type(inner).__name__} has no infer_batch/new_episode: run its episodes one at a time"
        )
    if len(envs) != len(episodes) or not envs:
        raise ValueError(f"one env per episode: {len(envs)} envs for {len(episodes)} episodes")
    spec = inner.spec
    running = [_start(inner, env, task) for env, task in zip(envs, episodes, strict=True)]
    active = list(running)
    while active:
        due = [episode for episode in active if not episode.queue]
        if due:
            for episode in due:
                check_observation(episode.observation, spec)
            before = time.perf_counter()
            raw_chunks = inner.infer_batch(
                [episode.observation for episode in due], [episode.state for episode in due]
            )
            latency = time.perf_counter() - before
            for episode, raw_chunk in zip(due, raw_chunks, strict=True):
                episode.latencies.append(latency)
                try:
                    chunk = check_action_chunk(raw_chunk, spec, JOINT_LOWER, JOINT_UPPER)
                except UnsafeActionViolation as error:
                    episode.violation = str(error)  # this episode ends here, scored as a violation
                    _finish(episode, spec.action_space, checkpoint_id, step)
                    continue
                check_denormalized(chunk, action_stats)
                if episode.state.normalized_inputs:
                    check_normalized_inputs(episode.state.normalized_inputs)
                if keep_chunks:
                    episode.chunks.append((episode.steps, chunk.copy()))
                episode.queue = list(chunk[: spec.n_action_steps])
            active = [episode for episode in active if episode.result is None]
        for episode in active:
            episode.observation = {}  # dropped before the step: the env then keeps no copy for it
            episode.observation, _reward, terminated, truncated, episode.info = episode.env.step(
                episode.queue.pop(0)
            )
            episode.steps += 1
            if episode.signals is not None:
                episode.signals.record(episode.env)
            if terminated or truncated:
                _finish(episode, spec.action_space, checkpoint_id, step)
        active = [episode for episode in active if episode.result is None]
    return [episode.result for episode in running]  # type: ignore[misc]


def _start(policy: Any, env: Any, task: LockstepEpisode) -> _Running:
    # The seeds run_episode sets before policy.reset(), and the episode seed reset() would draw from them.
    random.seed(task.seed)
    np.random.seed(task.seed % 2**32)
    state = policy.new_episode(int(np.random.randint(0, 2**31 - 1)))
    started = time.perf_counter()
    options = {"block_xy": tuple(task.block_xy)} if task.block_xy is not None else None
    observation, info = env.reset(seed=task.seed, options=options) if options else env.reset(seed=task.seed)
    block_start = np.asarray(env.block_position, dtype=np.float64)
    if task.block_xy is not None and np.linalg.norm(block_start[:2] - np.asarray(task.block_xy)) > 0.005:
        raise GridPlacementError(
            f"env.reset(options={{'block_xy': {tuple(task.block_xy)}}}) put the block at "
            f"{tuple(np.round(block_start[:2], 3))}: this env does not support placing the block"
        )
    # What the simulator saw at every step, for naming a failure as run_episode does.
    signals = EpisodeSignals.start(env) if hasattr(getattr(env, "unwrapped", env), "probe") else None
    return _Running(env, task, state, observation, block_start, started, info=info, signals=signals)


def _finish(episode: _Running, action_space: str, checkpoint_id: str, step: int | None) -> None:
    record = episode_record(
        episode.env,
        action_space,
        episode.task.seed,
        checkpoint_id=checkpoint_id,
        step=step,
        latencies=episode.latencies,
        wall_time_s=time.perf_counter() - episode.started,
        block_start=episode.block_start,
        grid_cell=episode.task.grid_cell,
        violation=episode.violation,
        info=episode.info,
        signals=episode.signals,
    )
    episode.result = EpisodeResult(record=record, chunks=episode.chunks)
