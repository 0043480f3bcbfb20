"""``FaultyExpert``: the scripted expert made to commit one named failure, for checking diagnostics.

Each fault changes what the expert believes or does in one way, so the episode fails the way a learned
policy can (registered as ``scripted:fault=NAME``):

- ``beside``: aims 3 cm to the robot's left of the block and closes there (closes on air).
- ``hover``: stops with its grasp point 5 cm above the block, jaws open (never descends).
- ``lateral``: goes down 3 cm to the robot's left of the block with the jaws open (lateral miss).
- ``slip``: grips with a command of ``SLIP_GRIP`` (the jaws barely touch) and lifts (grasp slips).
- ``drop``: opens the jaws once the block is carried ``DROP_AFTER_M`` (drops during transport).
- ``outside``: places 9 cm beyond the bowl's centre (releases outside the bowl).
- ``stall``: holds the home pose (stalls).
- ``oscillate``: swings the shoulder ±8° around home at 1.5 Hz (oscillates).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from libs.errors import LabError
from libs.policy_api.types import Observation
from libs.sim.expert import PAN_AXIS_XY, ExpertPlan, ExpertTarget
from libs.sim.scripted_policy import ScriptedPolicy, privileged_state

FAULTS: tuple[str, ...] = ("beside", "hover", "lateral", "slip", "drop", "outside", "stall", "oscillate")
#: Sideways aim error of ``beside`` and ``lateral`` (m).
AIM_ERROR_M = 0.03
#: Height above the block of ``hover`` (m).
HOVER_ABOVE_M = 0.05
#: Placement error of ``outside`` (m, away from the robot).
PLACE_ERROR_M = 0.09
#: Gripper command of ``slip`` while holding: the jaws stop on the block at ~15; measured on seed 0, 18
#: still carries it, 18.5–19 touch it with both jaws and lose it as the lift starts, 21 never grips.
SLIP_GRIP = 19.0
#: ``drop`` lets go once the plan has carried the block this far (m) from where it lifted it.
DROP_AFTER_M = 0.04
#: Opening of the jaws (0–100) when ``hover``/``lateral`` keep them open and ``drop`` lets go.
OPEN = 80.0
#: ``oscillate``: shoulder-pan swing (degrees) and half period (control steps).
SWING_DEG = 8.0
SWING_HALF_PERIOD = 10
# Waypoint indices of ``ExpertPlan`` (see libs.sim.expert): the grasp, the lift, the carry's end.
_GRASP, _LIFT, _CARRY = 2, 4, 5


class FaultError(LabError, ValueError):
    """An unknown fault name; the message lists the known ones."""


class _HeldPlan:
    """An ``ExpertPlan`` that stops at ``until`` (a control step) and holds that pose."""

    def __init__(self, plan: ExpertPlan, until: int) -> None:
        self.plan, self.until = plan, until
        self.waypoints = plan.waypoints

    @property
    def duration_steps(self) -> int:
        return self.until + 1

    def target(self, step: int) -> ExpertTarget:
        return self.plan.target(min(step, self.until))


def _left_of(xy: np.ndarray) -> np.ndarray:
    radial = np.asarray(xy, dtype=np.float64) - PAN_AXIS_XY
    radial /= max(float(np.linalg.norm(radial)), 1e-9)
    return np.array([-radial[1], radial[0], 0.0])


def _away_from_robot(xy: np.ndarray) -> np.ndarray:
    radial = np.asarray(xy, dtype=np.float64) - PAN_AXIS_XY
    radial /= max(float(np.linalg.norm(radial)), 1e-9)
    return np.array([radial[0], radial[1], 0.0])


class FaultyExpert(ScriptedPolicy):
    """The joint-space scripted expert committing ``fault`` (one of ``FAULTS``)."""

    def __init__(self, fault: str, **kwargs: Any) -> None:
        if fault not in FAULTS:
            raise FaultError(f"unknown fault {fault!r}: use one of {', '.join(FAULTS)}")
        super().__init__(**kwargs)
        self.fault = fault
        self._ends: np.ndarray | None = None
        self._home: np.ndarray | None = None

    def attach_env(self, env: Any) -> None:
        self._home = np.asarray(env.joint_state(), dtype=np.float32)
        super().attach_env(env)

    def attach_state(self, state: Mapping[str, Any]) -> None:
        state = dict(state)
        block = np.asarray(state["block_position"], dtype=np.float64)
        if self.fault in ("beside", "lateral"):
            state["block_position"] = block + AIM_ERROR_M * _left_of(block[:2])
        elif self.fault == "hover":
            state["block_position"] = block + np.array([0.0, 0.0, HOVER_ABOVE_M])
        elif self.fault == "outside":
            bowl = np.asarray(state["bowl_position"], dtype=np.float64)
            state["bowl_position"] = bowl + PLACE_ERROR_M * _away_from_robot(bowl[:2])
        super().attach_state(state)
        plan = self._plan
        assert plan is not None
        self._ends = np.cumsum([w.steps for w in plan.waypoints]) - 1
        if self.fault == "hover":
            self._plan = _HeldPlan(plan, int(self._ends[_GRASP]))  # type: ignore[assignment]
        elif self.fault == "lateral":
            self._plan = _HeldPlan(plan, int(self._ends[_GRASP]))  # type: ignore[assignment]

    def _drop_step(self) -> int:
        """The first carry step planned ``DROP_AFTER_M`` from where the block was lifted."""
        plan, ends = self._plan, self._ends
        assert plan is not None and ends is not None
        lifted = plan.target(int(ends[_LIFT])).position
        for step in range(int(ends[_LIFT]), int(ends[_CARRY]) + 1):
            if np.linalg.norm(plan.target(step).position[:2] - lifted[:2]) >= DROP_AFTER_M:
                return step
        return int(ends[_CARRY])

    def infer(self, observation: Observation) -> np.ndarray:
        step = int(privileged_state(self._env)["step"]) if self._env is not None else 0
        steps = np.arange(step, step + self.spec.chunk_length)
        if self.fault in ("stall", "oscillate"):
            if self._home is None:
                raise FaultError("call attach_env(env) after env.reset() first")
            chunk = np.tile(self._home, (len(steps), 1))
            if self.fault == "oscillate":
                sign = np.where((steps // SWING_HALF_PERIOD) % 2 == 0, 1.0, -1.0)
                chunk[:, 0] += SWING_DEG * sign
            return chunk.astype(np.float32)
        chunk = super().infer(observation)
        ends = self._ends
        assert ends is not None
        if self.fault in ("hover", "lateral"):
            chunk[:, -1] = OPEN
        elif self.fault == "slip":
            holding = steps > ends[_GRASP]
            chunk[holding, -1] = np.maximum(chunk[holding, -1], SLIP_GRIP)
        elif self.fault == "drop":
            chunk[steps >= self._drop_step(), -1] = OPEN
        return chunk
