"""What happened in an episode, decided from simulator state.

``TaskProbe`` reads the few facts the classifier needs from an ``MjData`` (block pose and speed, which
gripper parts touch the block, whether it is inside the bowl); ``OutcomeTracker`` folds them step by step
into an ``Outcome`` and the per-episode ``EpisodeFigures``.

Outcomes:
- ``success``: the block rests inside the bowl, untouched by the gripper (decided the moment it holds).
- ``never_picked_up``: the block was never lifted in the gripper.
- ``dropped_during_transport``: the block was lifted, then left the gripper away from the bowl (more than
  ``NEAR_GOAL_MARGIN_M`` outside its rim) and ended outside the bowl: lost on the way.
- ``missed_goal``: the block was lifted and left the gripper near the bowl, but ended outside it: the
  placing was attempted and missed.
- ``timeout``: the block was lifted and is still held (or still moving) when the episode ran out.

Progress (``PROGRESS_STAGES``), from the same facts: the furthest of approached (a jaw touched the block) →
grasped (both jaws) → lifted (picked) → carried over the bowl (held above the table inside the bowl's
radius) → placed (success). ``progress`` = stage / 5, so two policies that never succeed are still ordered.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

import mujoco
import numpy as np


class Outcome(StrEnum):
    SUCCESS = "success"
    NEVER_PICKED_UP = "never_picked_up"
    DROPPED_DURING_TRANSPORT = "dropped_during_transport"
    MISSED_GOAL = "missed_goal"
    TIMEOUT = "timeout"


#: The block counts as lifted when its bottom is this far above the table. A cube tipped onto an edge by
#: a push raises its centre by at most (√2 − 1)/2 · 2.5 cm ≈ 5 mm, and the scripted expert lifts 8 cm, so
#: 2 cm separates "carried" from "knocked about" with margin on both sides.
PICK_HEIGHT_M = 0.02
#: "At rest" = slower than this (m/s). A block settling in the bowl drops below 1 cm/s within a few
#: control steps; a carried block moves at 5–20 cm/s.
REST_SPEED_M_S = 0.02
#: The block must rest in the bowl, free of the gripper, for this many consecutive control steps
#: (1/6 s at 30 Hz) so a block bouncing across the bowl is not counted.
SUCCESS_HOLD_STEPS = 5
#: Where the block leaves the gripper tells a drop from a missed placement: within this distance (m) of
#: the bowl's inner wall, horizontally, it was being placed. 4 cm is more than a block width of slack
#: around the rim and less than the gap the scene keeps between a spawned block and the bowl (11 cm
#: centre to centre minus the 5.5 cm radius), so a block dropped right after the lift is never "near".
NEAR_GOAL_MARGIN_M = 0.04
#: Below this height (m) the block has fallen off the table: nothing can recover it.
OFF_TABLE_HEIGHT_M = -0.05
#: Block centre must be this much inside the bowl wall (m) to count as in the bowl, so a block balanced
#: on the rim is not.
IN_BOWL_MARGIN_M = 0.002


#: Milestones of the task in order; an episode's progress stage is the furthest it reached.
PROGRESS_STAGES: tuple[str, ...] = ("none", "approached", "grasped", "lifted", "over_bowl", "placed")


@dataclass(frozen=True)
class TaskState:
    """The simulator facts one classification step needs."""

    block_position: np.ndarray
    block_speed_m_s: float
    block_height_m: float  # of the block's bottom face above the table (≈0 when resting on it)
    touching_fixed_jaw: bool
    touching_moving_jaw: bool
    in_bowl: bool
    bowl_distance_m: float  # horizontal, block centre to bowl centre
    gripper_command: float  # commanded opening, 0–100 (reported, not used to classify)

    @property
    def grasped(self) -> bool:
        return self.touching_fixed_jaw and self.touching_moving_jaw

    @property
    def touching_gripper(self) -> bool:
        return self.touching_fixed_jaw or self.touching_moving_jaw


class TaskProbe:
    """Reads ``TaskState`` from an ``MjData`` of the pick-and-place scene."""

    def __init__(
        self,
        model: mujoco.MjModel,
        *,
        block_body: str,
        bowl_body: str,
        fixed_jaw_bodies: tuple[str, ...],
        moving_jaw_bodies: tuple[str, ...],
        block_half_size_m: float,
        bowl_inner_radius_m: float,
        bowl_rim_height_m: float,
        gripper_command: Any,
    ) -> None:
        self.model = model
        self.block_body = model.body(block_body).id
        self.bowl_mocap = model.body(bowl_body).mocapid[0]
        block_geoms = np.flatnonzero(model.geom_bodyid == self.block_body)
        self._block_geoms = set(block_geoms.tolist())
        self._fixed_bodies = {model.body(name).id for name in fixed_jaw_bodies}
        self._moving_bodies = {model.body(name).id for name in moving_jaw_bodies}
        self.block_half = block_half_size_m
        self.bowl_inner_radius = bowl_inner_radius_m
        self.bowl_rim_height = bowl_rim_height_m
        self._gripper_command = gripper_command  # callable(data) -> opening 0–100

    def read(self, data: mujoco.MjData) -> TaskState:
        block_position = data.xpos[self.block_body].copy()
        # cvel is (angular, linear) about the subtree centre of mass: the block's own linear velocity.
        block_speed = float(np.linalg.norm(data.cvel[self.block_body, 3:]))
        fixed = moving = False
        for index in range(data.ncon):
            contact = data.contact[index]
            geom1, geom2 = int(contact.geom[0]), int(contact.geom[1])
            if geom1 in self._block_geoms:
                other = geom2
            elif geom2 in self._block_geoms:
                other = geom1
            else:
                continue
            body = int(self.model.geom_bodyid[other])
            fixed |= body in self._fixed_bodies
            moving |= body in self._moving_bodies
        bowl_center = data.mocap_pos[self.bowl_mocap]
        horizontal = float(np.linalg.norm(block_position[:2] - bowl_center[:2]))
        in_bowl = (
            horizontal < self.bowl_inner_radius - IN_BOWL_MARGIN_M
            and block_position[2] - bowl_center[2] < self.bowl_rim_height + self.block_half
        )
        return TaskState(
            block_position=block_position,
            block_speed_m_s=block_speed,
            block_height_m=float(block_position[2] - self.block_half),
            touching_fixed_jaw=fixed,
            touching_moving_jaw=moving,
            in_bowl=bool(in_bowl),
            bowl_distance_m=horizontal,
            gripper_command=float(self._gripper_command(data)),
        )


@dataclass
class EpisodeFigures:
    """Per-episode numbers for reports."""

    outcome: Outcome | None
    steps: int
    max_block_height_m: float
    picked: bool
    pick_step: int | None
    ik_failures: int
    ik_error_mm_mean: float
    #: Index into PROGRESS_STAGES of the furthest milestone reached.
    progress_stage: int = 0

    @property
    def progress(self) -> float:
        """Progress score in [0, 1]: the furthest milestone reached over the last one."""
        return self.progress_stage / (len(PROGRESS_STAGES) - 1)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcome"] = None if self.outcome is None else str(self.outcome)
        data["progress"] = self.progress
        return data


class OutcomeTracker:
    """Folds ``TaskState`` per control step into the episode's outcome and figures."""

    def __init__(self, bowl_inner_radius_m: float = 0.055) -> None:
        self.near_goal_radius_m = bowl_inner_radius_m + NEAR_GOAL_MARGIN_M
        self.bowl_inner_radius_m = bowl_inner_radius_m
        self.reset()

    def reset(self) -> None:
        self.steps = 0
        self.max_block_height_m = 0.0
        self.picked = False
        self.pick_step: int | None = None
        self.holding = False
        self.released_near_goal: bool | None = None  # where the last grasp ended (None: never ended)
        self.success_streak = 0
        self.decided: Outcome | None = None
        self.last_state: TaskState | None = None
        self.ik_failures = 0
        self._ik_errors_mm: list[float] = []
        self.progress_stage = 0

    def record_ik(self, error_m: float, failed: bool) -> None:
        self._ik_errors_mm.append(1000.0 * error_m)
        self.ik_failures += int(failed)

    def update(self, state: TaskState) -> Outcome | None:
        """Account one control step; returns the outcome once it is decided (then it never changes)."""
        self.steps += 1
        self.last_state = state
        if self.decided is not None:
            return self.decided
        self.max_block_height_m = max(self.max_block_height_m, state.block_height_m)
        if state.grasped and state.block_height_m > PICK_HEIGHT_M:
            if not self.picked:
                self.pick_step = self.steps
            self.picked = True
        # A grasp lasts from both jaws touching until neither does (the block may slide out past one jaw
        # first); where it ended tells a missed placement from a drop on the way.
        if state.grasped:
            self.holding = True
        elif self.holding and not state.touching_gripper:
            self.holding = False
            self.released_near_goal = state.bowl_distance_m < self.near_goal_radius_m
        resting_in_bowl = (
            state.in_bowl and not state.touching_gripper and state.block_speed_m_s < REST_SPEED_M_S
        )
        self.success_streak = self.success_streak + 1 if resting_in_bowl else 0
        self._advance_progress(state)
        if self.success_streak >= SUCCESS_HOLD_STEPS:
            self.decided = Outcome.SUCCESS
            self.progress_stage = PROGRESS_STAGES.index("placed")
        elif state.block_height_m < OFF_TABLE_HEIGHT_M:
            self.decided = self._failure()
        return self.decided

    def _advance_progress(self, state: TaskState) -> None:
        reached = 0
        if state.touching_gripper:
            reached = 1
        if state.grasped:
            reached = 2
        if self.picked:
            reached = 3
        lifted_now = state.grasped and state.block_height_m > PICK_HEIGHT_M
        if lifted_now and state.bowl_distance_m < self.bowl_inner_radius_m:
            reached = 4  # held above the table, inside the bowl's radius
        self.progress_stage = max(self.progress_stage, reached)

    def provisional(self) -> Outcome:
        """The outcome if the episode ended now."""
        if self.decided is not None:
            return self.decided
        state = self.last_state
        if state is not None and state.in_bowl and not state.touching_gripper:
            # At the very end a block lying in the bowl counts even if it has not rested for the full hold.
            if state.block_speed_m_s < REST_SPEED_M_S:
                return Outcome.SUCCESS
        return self._failure()

    def _failure(self) -> Outcome:
        if not self.picked:
            return Outcome.NEVER_PICKED_UP
        state = self.last_state
        still_held = state is not None and (state.grasped or state.touching_gripper)
        if still_held or self.released_near_goal is None:
            return Outcome.TIMEOUT
        return Outcome.MISSED_GOAL if self.released_near_goal else Outcome.DROPPED_DURING_TRANSPORT

    def finish(self) -> Outcome:
        """Decide at the end of the episode (time ran out or the episode was cut)."""
        if self.decided is None:
            self.decided = self.provisional()
            if self.decided == Outcome.SUCCESS:
                self.progress_stage = PROGRESS_STAGES.index("placed")
        return self.decided

    def figures(self) -> EpisodeFigures:
        errors = self._ik_errors_mm
        return EpisodeFigures(
            outcome=self.decided,
            steps=self.steps,
            max_block_height_m=float(self.max_block_height_m),
            picked=self.picked,
            pick_step=self.pick_step,
            ik_failures=self.ik_failures,
            ik_error_mm_mean=float(np.mean(errors)) if errors else 0.0,
            progress_stage=self.progress_stage,
        )
