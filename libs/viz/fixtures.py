"""Small policies with known failure modes, for the whisker and diagnostics tests (and demos)."""

from __future__ import annotations

from typing import Any

import numpy as np

from libs.policy_api.types import PolicySpec
from libs.sim.env import HOME_JOINTS
from libs.sim.scripted_policy import ScriptedPolicy
from libs.viz.whiskers import ChunkForecast, WhiskerEpisode


class ConstantPolicy:
    """Always the same chunk: every row the home pose (the arm holds still)."""

    def __init__(self, chunk_length: int = 20, n_action_steps: int = 10) -> None:
        self.spec = PolicySpec(cameras=(), chunk_length=chunk_length, n_action_steps=n_action_steps)

    def reset(self) -> None:
        pass

    def infer(self, observation: Any) -> np.ndarray:
        return np.tile(HOME_JOINTS, (self.spec.chunk_length, 1)).astype(np.float32)


class MeanGripperPolicy:
    """The scripted expert's arm motion with the gripper held at a fixed value (the dataset mean)."""

    def __init__(self, gripper: float) -> None:
        self.inner = ScriptedPolicy()
        self.gripper = float(gripper)

    @property
    def spec(self) -> PolicySpec:
        return self.inner.spec

    def reset(self) -> None:
        self.inner.reset()

    def attach_env(self, env: Any) -> None:
        self.inner.attach_env(env)

    def infer(self, observation: Any) -> np.ndarray:
        chunk = self.inner.infer(observation).copy()
        chunk[:, -1] = self.gripper
        return chunk


def action_stats_of(actions: np.ndarray) -> dict[str, np.ndarray]:
    """LeRobot-layout stats (mean, std, min, max) of an (N, action_dim) array, as a dataset stores them."""
    actions = np.asarray(actions, dtype=np.float64)
    return {
        "mean": actions.mean(axis=0),
        "std": actions.std(axis=0),
        "min": actions.min(axis=0),
        "max": actions.max(axis=0),
    }


#: A block and bowl of the bench scene's sizes, for drawn whisker episodes.
BOWL = np.array([0.16, 0.09, 0.0])
BLOCK = np.array([0.23, -0.05, 0.0125])


def straight_episode(
    chunk: int = 4, executed: int = 4, chunks: int = 3, drift: float = 0.0
) -> WhiskerEpisode:
    """The gripper moves 1 cm per step along x; each forecast is the path (plus ``drift`` per row in y)."""
    steps = chunk * chunks
    actual = [np.array([0.1 + 0.01 * t, 0.0, 0.1]) for t in range(steps + 1)]
    forecasts = []
    for index in range(chunks):
        start = index * executed
        rows = np.arange(start + 1, start + chunk + 1)
        path = np.array([[0.1 + 0.01 * t, drift * (t - start), 0.1] for t in rows])
        forecasts.append(
            ChunkForecast(
                env_step=start,
                actions=np.zeros((chunk, 6), np.float32),
                ee_start=actual[start],
                ee_path=path,
                gripper_command=np.full(chunk, 80.0),
                gripper_opening=np.full(chunk, 80.0),
                block_start=BLOCK,
                block_path=np.tile(BLOCK, (chunk, 1)),
            )
        )
    return WhiskerEpisode(
        mode="dynamic",
        seed=3,
        action_space="joint",
        chunk_length=chunk,
        n_action_steps=executed,
        bowl_position=BOWL,
        forecasts=forecasts,
        actual_ee=actual,
        actual_gripper=[80.0] * (steps + 1),
        actual_block=[BLOCK] * (steps + 1),
        actual_qpos=[np.zeros(3)] * (steps + 1),
        executed_actions=[np.zeros(6, np.float32)] * steps,
        outcome="never_picked_up",
    )
