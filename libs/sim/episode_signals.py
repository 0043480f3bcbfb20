"""``EpisodeSignals``: what the simulator saw at every control step of one episode, kept as arrays.

The failure diagnosis (``libs.sim.failures``) reads only these: where the gripper frame was, where the
block was, how far the jaws were open and what the policy commanded, which jaws touched the block, and
whether the block sat in the bowl. ``start(env)`` after ``env.reset`` takes row 0 (the state the first
action starts from); ``record(env)`` after every ``env.step`` adds one row. A few floats per step: cheap
enough to keep for every evaluated episode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from libs.sim.expert import PAN_AXIS_XY
from libs.sim.layout import CONTROL_HZ


@dataclass
class EpisodeSignals:
    """Per-step simulator facts of one episode; row 0 is the state after reset, row t after step t."""

    bowl_xy: np.ndarray
    bowl_inner_radius_m: float
    block_half_size_m: float
    control_hz: float = CONTROL_HZ
    #: Shoulder-pan axis (world xy): "towards the robot" and "left/right" are measured from it.
    robot_xy: np.ndarray = field(default_factory=lambda: PAN_AXIS_XY.copy())
    ee: list[np.ndarray] = field(default_factory=list)
    block: list[np.ndarray] = field(default_factory=list)
    opening: list[float] = field(default_factory=list)
    command: list[float] = field(default_factory=list)
    fixed_jaw: list[bool] = field(default_factory=list)
    moving_jaw: list[bool] = field(default_factory=list)
    in_bowl: list[bool] = field(default_factory=list)

    @classmethod
    def start(cls, env: Any) -> EpisodeSignals:
        """Row 0 from a freshly reset ``SO101PickPlaceEnv`` (or anything with its accessors)."""
        env = getattr(env, "unwrapped", env)
        signals = cls(
            bowl_xy=np.asarray(env.bowl_position, dtype=np.float64)[:2].copy(),
            bowl_inner_radius_m=float(env.scene.bowl_inner_radius_m),
            block_half_size_m=float(env.scene.block_size_m) / 2,
        )
        signals.record(env)
        return signals

    def record(self, env: Any) -> None:
        """One row from the env's current state (call after every ``env.step``)."""
        env = getattr(env, "unwrapped", env)
        state = env.probe.read(env.data)
        self.ee.append(np.asarray(env.ee_position, dtype=np.float64))
        self.block.append(np.asarray(state.block_position, dtype=np.float64))
        self.opening.append(float(env.joint_state()[5]))
        self.command.append(float(state.gripper_command))
        self.fixed_jaw.append(bool(state.touching_fixed_jaw))
        self.moving_jaw.append(bool(state.touching_moving_jaw))
        self.in_bowl.append(bool(state.in_bowl))

    @property
    def steps(self) -> int:
        """Control steps recorded (rows after row 0)."""
        return max(len(self.ee) - 1, 0)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every per-step signal as an array (rows = steps, row 0 = after reset)."""
        fixed, moving = np.asarray(self.fixed_jaw, bool), np.asarray(self.moving_jaw, bool)
        return {
            "ee": np.asarray(self.ee, dtype=np.float64).reshape(-1, 3),
            "block": np.asarray(self.block, dtype=np.float64).reshape(-1, 3),
            "opening": np.asarray(self.opening, dtype=np.float64),
            "command": np.asarray(self.command, dtype=np.float64),
            "grasped": fixed & moving,
            "touching": fixed | moving,
            "in_bowl": np.asarray(self.in_bowl, bool),
        }
