"""The episode loop: observers see each moment in order, an unsafe chunk ends the episode as a violation,
a policy that breaks its contract stops it, and lockstep plays each episode as it is played alone."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from libs.policy_api.contracts import ContractViolation
from libs.policy_api.types import EpisodeState, PolicySpec
from libs.sim.env import SO101PickPlaceEnv
from libs.sim.play.episode import CONTRACT_VIOLATION, EpisodeStart, GridPlacementError, play_episode
from libs.sim.play.evaluable_env import EvaluableEnv
from libs.sim.play.lockstep import play_lockstep, supports_batches
from libs.sim.play.observers import ContractChecks, EpisodeObserver, InferenceEvent, StepEvent
from libs.sim.scene_config import SceneConfig


def make_env(max_steps: int = 12) -> SO101PickPlaceEnv:
    return SO101PickPlaceEnv(scene=SceneConfig().with_cameras([]), max_steps=max_steps, render=False)


class Hold:
    """Holds the state it observed, 4 actions a chunk of 6; ``new_episode``/``infer_batch`` as a batch
    policy."""

    def __init__(self, action: np.ndarray | None = None) -> None:
        self.spec = PolicySpec(cameras=(), chunk_length=6, n_action_steps=4)
        self.action = action
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1

    def infer(self, observation: Any) -> np.ndarray:
        action = self.action if self.action is not None else np.asarray(observation["observation.state"])
        return np.tile(np.asarray(action, dtype=np.float32), (6, 1))

    def new_episode(self, seed: int) -> EpisodeState:
        return EpisodeState(seed)

    def infer_batch(self, observations: Any, episodes: Any) -> list[np.ndarray]:
        return [self.infer(observation) for observation in observations]


class Log(EpisodeObserver):
    def __init__(self) -> None:
        self.moments: list[str] = []

    def on_reset(self, env: EvaluableEnv, seed: int) -> None:
        self.moments.append("reset")

    def on_inference(self, event: InferenceEvent) -> None:
        self.moments.append(f"infer@{event.env_step}")

    def before_step(self, observation: Any, action: np.ndarray) -> np.ndarray:
        self.moments.append("before")
        return action

    def on_step(self, event: StepEvent) -> None:
        self.moments.append(f"step{event.env_step}")

    def on_end(self) -> None:
        self.moments.append("end")


def test_observers_see_every_moment_in_order() -> None:
    env, log, policy = make_env(max_steps=5), Log(), Hold()
    played = play_episode(policy, env, 3, [ContractChecks(), log])
    assert isinstance(env, EvaluableEnv)
    assert played.steps == 5 and played.seed == 3 and len(played.latencies_s) == 2 and policy.resets == 1
    assert log.moments == [
        "reset",
        "infer@0",
        *["before", "step1", "before", "step2", "before", "step3", "before", "step4"],
        "infer@4",
        "before",
        "step5",
        "end",
    ]


def test_an_unsafe_chunk_ends_the_episode_as_a_violation() -> None:
    log = Log()
    played = play_episode(Hold(np.full(6, np.nan)), make_env(), 0, [ContractChecks(), log])
    assert played.outcome == CONTRACT_VIOLATION and played.steps == 0 and "non-finite" in played.violation
    assert log.moments == ["reset", "end"]  # a non-finite chunk is not shown to the observers
    far = play_episode(Hold(np.full(6, 500.0)), make_env(), 0, [ContractChecks(), log])
    assert far.outcome == CONTRACT_VIOLATION and log.moments[-2:] == ["infer@0", "end"]


def test_a_policy_for_another_action_space_is_refused() -> None:
    policy = Hold()
    policy.spec = PolicySpec(cameras=(), action_space="ee", action_dim=7, chunk_length=6, n_action_steps=4)
    with pytest.raises(ContractViolation, match="action_space='ee'"):
        play_episode(policy, make_env(), 0)


def test_a_block_the_env_cannot_place_is_one_line() -> None:
    env = make_env()
    env.reset = lambda seed=None, options=None: SO101PickPlaceEnv.reset(env, seed=seed)  # ignores options
    with pytest.raises(GridPlacementError, match="does not support placing the block"):
        play_episode(Hold(), env, EpisodeStart(0, (0.9, 0.9)))


def test_lockstep_plays_each_episode_as_alone() -> None:
    policy = Hold()
    assert supports_batches(policy)
    alone = [play_episode(policy, make_env(), seed) for seed in (0, 1, 2)]
    starts = [EpisodeStart(seed) for seed in (0, 1, 2)]
    together = play_lockstep(policy, [make_env() for _ in starts], starts)
    for single, batched in zip(alone, together, strict=True):
        assert (batched.seed, batched.steps, batched.outcome) == (single.seed, single.steps, single.outcome)
        np.testing.assert_array_equal(batched.block_start, single.block_start)
    with pytest.raises(ValueError, match="one env per episode"):
        play_lockstep(policy, [make_env()], [EpisodeStart(0), EpisodeStart(1)])
