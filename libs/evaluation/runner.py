"""Runs one (policy, seed) episode with every contract check, keeping every predicted chunk.

The runner owns chunk execution: it calls ``infer`` when the previous chunk's ``n_action_steps`` have been
executed, so every backend re-plans at the same points. Each inference can be observed through
``on_inference`` (the env at the moment of inference and the chunk it produced), which is how whiskers
forward-simulate a chunk from a copy of the state; ``on_step`` sees every executed action (whiskers record
the path actually taken with it); ``before_step`` sees each action with the observation it was predicted
from and chooses what is executed (the recorder writes the frame and may perturb the executed action).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from libs.evaluation.records import EpisodeRecord
from libs.policy_api.contracts import (
    ContractViolation,
    EpisodeGuardedPolicy,
    UnsafeActionViolation,
    check_action_chunk,
    check_denormalized,
    check_normalized_inputs,
    check_observation,
)
from libs.policy_api.types import ActionChunk, Observation
from libs.sim.episode_signals import EpisodeSignals
from libs.sim.failures import diagnose_failures, failure_summary
from libs.sim.layout import JOINT_LOWER, JOINT_UPPER

#: Outcome of an episode stopped by an UnsafeActionViolation (NaN or far out-of-range actions).
CONTRACT_VIOLATION = "contract_violation"


class GridPlacementError(RuntimeError):
    """The env did not put the block where a --grid evaluation asked; the message names the fix."""


@dataclass(frozen=True)
class InferenceEvent:
    """One call to ``infer``: ``env`` is live (copy ``env.data`` before simulating from it)."""

    env: Any
    env_step: int
    observation: Observation
    chunk: ActionChunk
    latency_s: float


@dataclass(frozen=True)
class StepEvent:
    """One executed action: ``env`` is live, just stepped; ``env_step`` counts this step."""

    env: Any
    env_step: int
    action: np.ndarray


@dataclass
class EpisodeResult:
    record: EpisodeRecord
    #: (env step at inference, chunk) for every inference, when ``keep_chunks``.
    chunks: list[tuple[int, ActionChunk]] = field(default_factory=list)


def run_episode(
    policy: Any,
    env: Any,
    seed: int,
    *,
    checkpoint_id: str = "",
    step: int | None = None,
    action_stats: Mapping[str, Any] | None = None,
    block_xy: tuple[float, float] | None = None,
    grid_cell: tuple[int, int] | None = None,
    on_inference: Callable[[InferenceEvent], None] | None = None,
    keep_chunks: bool = True,
    on_step: Callable[[StepEvent], None] | None = None,
    before_step: Callable[[Observation, np.ndarray], np.ndarray] | None = None,
) -> EpisodeResult:
    """One episode from ``env.reset(seed)`` to the env's decision (or its step limit).

    ``action_stats`` (the dataset's ``action`` stats) enables the de-normalisation check; ``block_xy`` places
    the block for ``--grid`` evaluations. ``before_step(observation, action)`` returns the action to execute
    (recordings: the frame is written, the executed action may be perturbed). Raises ContractViolation when
    the policy breaks its contract.
    """
    guarded = policy if isinstance(policy, EpisodeGuardedPolicy) else EpisodeGuardedPolicy(policy)
    spec = guarded.spec
    if spec.action_space != getattr(env, "action_space_name", spec.action_space):
        raise ContractViolation(
            f"policy emits {spec.action_space!r} actions but the env was built for "
            f"{env.action_space_name!r}: build the env with action_space={spec.action_space!r}"
        )
    # Policies that sample from global RNGs (diffusion noise) become reproducible per seed.
    random.seed(seed)
    np.random.seed(seed % 2**32)

    started = time.perf_counter()
    options = {"block_xy": tuple(block_xy)} if block_xy is not None else None
    observation, info = env.reset(seed=seed, options=options) if options else env.reset(seed=seed)
    block_start = np.asarray(env.block_position, dtype=np.float64)
    if block_xy is not None and np.linalg.norm(block_start[:2] - np.asarray(block_xy)) > 0.005:
        raise GridPlacementError(
            f"env.reset(options={{'block_xy': {tuple(block_xy)}}}) put the block at "
            f"{tuple(np.round(block_start[:2], 3))}: this env does not support placing the block; "
            "update libs/sim or run without --grid"
        )
    guarded.start_episode(env)
    # What the simulator saw at every step, for naming the failure (envs without a task probe get none).
    signals = EpisodeSignals.start(env) if hasattr(getattr(env, "unwrapped", env), "probe") else None

    latencies: list[float] = []
    chunks: list[tuple[int, ActionChunk]] = []
    queue: list[np.ndarray] = []
    env_step = 0
    violation: str | None = None
    try:
        while True:
            if not queue:
                check_observation(observation, spec)
                before = time.perf_counter()
                raw_chunk = guarded.infer(observation)
                latency = time.perf_counter() - before
                latencies.append(latency)
                try:
                    chunk = check_action_chunk(raw_chunk, spec, JOINT_LOWER, JOINT_UPPER)
                except UnsafeActionViolation as error:
                    # This episode ends here and is scored as a violation; the sweep goes on.
                    violation = str(error)
                    # check_action_chunk has already checked the shape; NaN/inf cannot be simulated.
                    unsafe = np.asarray(raw_chunk, dtype=np.float32)
                    if on_inference is not None and np.all(np.isfinite(unsafe)):
                        # Whiskers still show where the unsafe chunk was heading (the env clips its
                        # targets to the joint range): the picture of *why* the episode was stopped.
                        on_inference(InferenceEvent(env, env_step, observation, unsafe, latency))
                    break
                check_denormalized(chunk, action_stats)
                normalized = guarded.last_normalized_inputs()
                if normalized:
                    check_normalized_inputs(normalized)
                if keep_chunks:
                    chunks.append((env_step, chunk.copy()))
                if on_inference is not None:
                    on_inference(InferenceEvent(env, env_step, observation, chunk, latency))
                queue = list(chunk[: spec.n_action_steps])
            action = queue.pop(0)
            executed = before_step(observation, action) if before_step is not None else action
            # Dropped before the step: an observation nobody holds needs no copy of the state it shows.
            del observation
            observation, _reward, terminated, truncated, info = env.step(executed)
            env_step += 1
            if signals is not None:
                signals.record(env)
            if on_step is not None:
                on_step(StepEvent(env, env_step, executed))
            if terminated or truncated:
                break
    finally:
        guarded.end_episode()
    wall_time = time.perf_counter() - started

    record = episode_record(
        env,
        spec.action_space,
        seed,
        checkpoint_id=checkpoint_id,
        step=step,
        latencies=latencies,
        wall_time_s=wall_time,
        block_start=block_start,
        grid_cell=grid_cell,
        violation=violation,
        info=info,
        signals=signals,
    )
    return EpisodeResult(record=record, chunks=chunks)


def episode_record(
    env: Any,
    action_space: str,
    seed: int,
    *,
    checkpoint_id: str,
    step: int | None,
    latencies: list[float],
    wall_time_s: float,
    block_start: np.ndarray,
    grid_cell: tuple[int, int] | None,
    violation: str | None,
    info: Mapping[str, Any],
    signals: EpisodeSignals | None = None,
) -> EpisodeRecord:
    """The record of the episode ``env`` has just finished (one runner's or a lockstep batch's); with the
    episode's ``signals``, a failed one is diagnosed."""
    figures = env.episode_figures()
    outcome = CONTRACT_VIOLATION if violation else str(figures.outcome or info.get("outcome"))
    failures = (
        diagnose_failures(signals)
        if signals is not None and outcome not in ("success", CONTRACT_VIOLATION)
        else []
    )
    latency_ms = np.asarray(latencies) * 1000.0
    ik_error = getattr(figures, "ik_error_mm_mean", None)
    record = EpisodeRecord(
        checkpoint_id=checkpoint_id,
        seed=int(seed),
        step=step,
        outcome=outcome,
        steps=int(figures.steps),
        picked=bool(figures.picked),
        pick_step=None if figures.pick_step is None else int(figures.pick_step),
        max_block_height_m=float(figures.max_block_height_m),
        ik_failures=int(getattr(figures, "ik_failures", 0) or 0),
        ik_error_mm_mean=None if ik_error is None or not np.isfinite(ik_error) else float(ik_error),
        inferences=len(latencies),
        latency_mean_ms=float(latency_ms.mean()) if latency_ms.size else 0.0,
        latency_p95_ms=float(np.percentile(latency_ms, 95)) if latency_ms.size else 0.0,
        wall_time_s=float(wall_time_s),
        action_space=action_space,
        block_x=float(block_start[0]),
        block_y=float(block_start[1]),
        grid_col=None if grid_cell is None else int(grid_cell[0]),
        grid_row=None if grid_cell is None else int(grid_cell[1]),
        violation=violation,
        progress=None if getattr(figures, "progress", None) is None else float(figures.progress),
        failure=failures[0].kind if failures else None,
        failure_value=failures[0].value if failures else None,
        failure_detail=failure_summary(failures, signals.control_hz) if signals and failures else None,
    )
    return record
