"""One episode of a policy in an env, from ``env.reset(seed)`` to the env's decision or its step limit.

``EpisodePlay`` is the episode: seeding, reset, the action queue (a new chunk once the previous chunk's
``n_action_steps`` have run, so every backend re-plans at the same points), stepping, and its observers.
``play_episode`` drives one with a policy's ``infer``; ``libs.sim.play.lockstep`` drives several with one
``infer_batch``. Nothing else steps an env for a policy.

Python's and numpy's global RNGs are seeded with the episode seed before the policy's reset, so a policy
that samples (diffusion noise) draws the same noise for a seed whatever ran before it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from libs.errors import LabError
from libs.policy_api.contracts import ContractViolation, EpisodeGuardedPolicy, UnsafeActionViolation
from libs.policy_api.types import Observation, Policy, PolicySpec
from libs.sim.outcome import EpisodeFigures
from libs.sim.play.evaluable_env import EvaluableEnv
from libs.sim.play.observers import EpisodeObserver, InferenceEvent, StepEvent

#: Outcome of an episode stopped by an UnsafeActionViolation (NaN or far out-of-range actions).
CONTRACT_VIOLATION = "contract_violation"
#: How far (m) the block may start from where an ``EpisodeStart`` placed it.
PLACEMENT_TOLERANCE_M = 0.005


class GridPlacementError(LabError, RuntimeError):
    """The env did not put the block where an episode asked; the message names the fix."""


@dataclass(frozen=True)
class EpisodeStart:
    """How an episode starts: its seed and, for ``--grid``, where the block goes (table x, y in metres)."""

    seed: int
    block_xy: tuple[float, float] | None = None


@dataclass
class PlayedEpisode:
    """What the loop saw of one episode (the env's own figures are taken when it ends)."""

    seed: int
    action_space: str
    block_start: np.ndarray
    figures: EpisodeFigures
    #: The last ``info`` the env returned (its ``outcome`` once decided).
    info: Mapping[str, Any]
    steps: int
    latencies_s: list[float]
    wall_time_s: float
    #: Why an unsafe chunk ended the episode (``UnsafeActionViolation``'s message), else None.
    violation: str | None = None

    @property
    def outcome(self) -> str:
        """The env's outcome, or ``contract_violation`` when an unsafe chunk stopped the episode."""
        if self.violation:
            return CONTRACT_VIOLATION
        return str(self.figures.outcome or self.info.get("outcome"))


@dataclass
class EpisodePlay:
    """One episode in progress (module docstring): ``begin``, then ``take`` a chunk whenever ``due`` and
    ``advance`` one step until ``played`` is set."""

    env: EvaluableEnv
    spec: PolicySpec
    start: EpisodeStart
    observers: Sequence[EpisodeObserver] = ()
    observation: Observation | None = None
    played: PlayedEpisode | None = None
    _queue: list[np.ndarray] = field(default_factory=list)
    _latencies: list[float] = field(default_factory=list)
    _steps: int = 0
    _info: Mapping[str, Any] = field(default_factory=dict)
    _started: float = 0.0
    _block_start: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def begin(self, start_policy: Callable[[], None]) -> None:
        """Seeds the global RNGs, resets the env (placing the block if asked), then ``start_policy()``."""
        if self.spec.action_space != self.env.action_space_name:
            raise ContractViolation(
                f"policy emits {self.spec.action_space!r} actions but the env was built for "
                f"{self.env.action_space_name!r}: build the env with action_space={self.spec.action_space!r}"
            )
        seed, block_xy = self.start.seed, self.start.block_xy
        random.seed(seed)
        np.random.seed(seed % 2**32)
        self._started = time.perf_counter()
        options = {"block_xy": tuple(block_xy)} if block_xy is not None else None
        self.observation, self._info = (
            self.env.reset(seed=seed, options=options) if options else self.env.reset(seed=seed)
        )
        self._block_start = np.asarray(self.env.block_position, dtype=np.float64)
        if block_xy is not None and np.linalg.norm(self._block_start[:2] - block_xy) > PLACEMENT_TOLERANCE_M:
            raise GridPlacementError(
                f"env.reset(options={{'block_xy': {tuple(block_xy)}}}) put the block at "
                f"{tuple(np.round(self._block_start[:2], 3))}: this env does not support placing the block; "
                "update libs/sim or run without --grid"
            )
        start_policy()
        for observer in self.observers:
            observer.on_reset(self.env, seed)

    @property
    def due(self) -> bool:
        """The episode goes on and its action queue is empty: it needs a chunk."""
        return self.played is None and not self._queue

    def before_inference(self) -> Observation:
        """The observation to infer from, after the observers have seen it (contract checks)."""
        assert self.observation is not None
        for observer in self.observers:
            observer.before_inference(self.observation, self.spec)
        return self.observation

    def take(
        self, raw_chunk: Any, latency_s: float, normalized_inputs: Mapping[str, np.ndarray] | None = None
    ) -> None:
        """The chunk predicted from ``before_inference``'s observation; an unsafe one ends the episode."""
        assert self.observation is not None
        self._latencies.append(latency_s)
        chunk = raw_chunk
        try:
            for observer in self.observers:
                chunk = observer.check_chunk(chunk, self.spec, normalized_inputs)
        except UnsafeActionViolation as error:
            # This episode ends here and is scored as a violation; the sweep goes on. Observers still see
            # a finite unsafe chunk (whiskers draw where it was heading: the picture of why it stopped).
            unsafe = np.asarray(raw_chunk, dtype=np.float32)
            if np.all(np.isfinite(unsafe)):
                self._notify_inference(unsafe, latency_s)
            self._finish(violation=str(error))
            return
        chunk = np.asarray(chunk, dtype=np.float32)
        self._notify_inference(chunk, latency_s)
        self._queue = list(chunk[: self.spec.n_action_steps])

    def advance(self) -> None:
        """Executes the next queued action (after the observers' ``before_step``)."""
        action = self._queue.pop(0)
        for observer in self.observers:
            action = observer.before_step(self.observation, action)  # type: ignore[arg-type]
        # Dropped before the step: an observation nobody holds needs no copy of the state it shows.
        self.observation = None
        self.observation, _reward, terminated, truncated, self._info = self.env.step(action)
        self._steps += 1
        event = StepEvent(self.env, self._steps, action)
        for observer in self.observers:
            observer.on_step(event)
        if terminated or truncated:
            self._finish()

    def _notify_inference(self, chunk: np.ndarray, latency_s: float) -> None:
        assert self.observation is not None
        event = InferenceEvent(self.env, self._steps, self.observation, chunk, latency_s)
        for observer in self.observers:
            observer.on_inference(event)

    def _finish(self, violation: str | None = None) -> None:
        self._queue = []
        self.played = PlayedEpisode(
            seed=self.start.seed,
            action_space=self.spec.action_space,
            block_start=self._block_start,
            figures=self.env.episode_figures(),
            info=self._info,
            steps=self._steps,
            latencies_s=self._latencies,
            wall_time_s=time.perf_counter() - self._started,
            violation=violation,
        )
        for observer in self.observers:
            observer.on_end()


def play_episode(
    policy: Policy | EpisodeGuardedPolicy,
    env: EvaluableEnv,
    start: EpisodeStart | int,
    observers: Sequence[EpisodeObserver] = (),
) -> PlayedEpisode:
    """One episode of ``policy`` in ``env``, its ``reset()`` run once after ``env.reset`` (and the env handed
    to a policy that reads the simulator). Raises ContractViolation when an observer's check fails."""
    guarded = policy if isinstance(policy, EpisodeGuardedPolicy) else EpisodeGuardedPolicy(policy)
    start = start if isinstance(start, EpisodeStart) else EpisodeStart(int(start))
    play = EpisodePlay(env, guarded.spec, start, observers)
    play.begin(lambda: guarded.start_episode(env))
    try:
        while play.played is None:
            if play.due:
                observation = play.before_inference()
                before = time.perf_counter()
                raw_chunk = guarded.infer(observation)
                del observation
                latency = time.perf_counter() - before
                play.take(raw_chunk, latency, guarded.last_normalized_inputs())
            if play.played is None:
                play.advance()
    finally:
        guarded.end_episode()
    assert play.played is not None
    return play.played
