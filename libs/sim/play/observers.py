"""What an episode's observers see, and the observers every evaluated episode has.

An ``EpisodeObserver`` is told of the episode's moments in order: ``on_reset`` (after ``env.reset`` and the
policy's reset), ``before_inference`` (the observation about to be inferred from), ``check_chunk`` (the chunk
just predicted, before anything acts on it: a check raises), ``on_inference`` (the chunk, accepted),
``before_step`` (returns the action to execute: a recorder writes the frame, recovery noise perturbs the
action), ``on_step`` (the env just stepped) and ``on_end``. The base class does nothing at each.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from libs.policy_api.contracts import (
    check_action_chunk,
    check_denormalized,
    check_normalized_inputs,
    check_observation,
)
from libs.policy_api.types import Observation, PolicySpec
from libs.sim.episode_signals import EpisodeSignals
from libs.sim.layout import JOINT_LOWER, JOINT_UPPER
from libs.sim.play.evaluable_env import EvaluableEnv


@dataclass(frozen=True)
class InferenceEvent:
    """One call to ``infer``: ``env`` is live (copy ``env.data`` before simulating from it)."""

    env: EvaluableEnv
    env_step: int
    observation: Observation
    chunk: np.ndarray
    latency_s: float


@dataclass(frozen=True)
class StepEvent:
    """One executed action: ``env`` is live, just stepped; ``env_step`` counts this step."""

    env: EvaluableEnv
    env_step: int
    action: np.ndarray


class EpisodeObserver:
    """Sees one episode's moments (module docstring); every hook is optional."""

    def on_reset(self, env: EvaluableEnv, seed: int) -> None: ...

    def before_inference(self, observation: Observation, spec: PolicySpec) -> None: ...

    def check_chunk(
        self, chunk: np.ndarray, spec: PolicySpec, normalized_inputs: Mapping[str, np.ndarray] | None
    ) -> np.ndarray:
        return chunk

    def on_inference(self, event: InferenceEvent) -> None: ...

    def before_step(self, observation: Observation, action: np.ndarray) -> np.ndarray:
        return action

    def on_step(self, event: StepEvent) -> None: ...

    def on_end(self) -> None: ...


class ContractChecks(EpisodeObserver):
    """Every observation against the policy's spec; every chunk finite, inside the joint limits (an unsafe
    chunk raises ``UnsafeActionViolation``: the loop ends the episode as a violation), de-normalised
    (against the dataset's ``action_stats``) and predicted from sanely normalised inputs."""

    def __init__(self, action_stats: Mapping[str, Any] | None = None) -> None:
        self.action_stats = action_stats

    def before_inference(self, observation: Observation, spec: PolicySpec) -> None:
        check_observation(observation, spec)

    def check_chunk(
        self, chunk: np.ndarray, spec: PolicySpec, normalized_inputs: Mapping[str, np.ndarray] | None
    ) -> np.ndarray:
        checked = check_action_chunk(chunk, spec, JOINT_LOWER, JOINT_UPPER)
        check_denormalized(checked, self.action_stats)
        if normalized_inputs:
            check_normalized_inputs(normalized_inputs)
        return checked


class SimulatorSignals(EpisodeObserver):
    """What the simulator saw at every step (``EpisodeSignals``), for naming a failure; envs without the
    task's probe (test doubles) give none."""

    def __init__(self) -> None:
        self.signals: EpisodeSignals | None = None

    def on_reset(self, env: EvaluableEnv, seed: int) -> None:
        probed = hasattr(getattr(env, "unwrapped", env), "probe")
        self.signals = EpisodeSignals.start(env) if probed else None

    def on_step(self, event: StepEvent) -> None:
        if self.signals is not None:
            self.signals.record(event.env)


class ChunkKeeper(EpisodeObserver):
    """Every accepted chunk with the env step it was predicted at."""

    def __init__(self) -> None:
        self.chunks: list[tuple[int, np.ndarray]] = []

    def on_inference(self, event: InferenceEvent) -> None:
        self.chunks.append((event.env_step, np.array(event.chunk, copy=True)))
