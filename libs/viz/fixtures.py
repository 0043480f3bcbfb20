"""Small policies with known failure modes, for the whisker and diagnostics tests (and demos)."""

from __future__ import annotations

from typing import Any

import numpy as np

from libs.policy_api.types import PolicySpec
from libs.sim.env import HOME_JOINTS
from libs.sim.scripted_policy import ScriptedPolicy


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
