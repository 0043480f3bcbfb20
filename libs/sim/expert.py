"""The scripted pick-and-place expert: IK waypoints planned from the simulator's privileged state.

Waypoints (gripper frame position, approach axis, jaw direction, gripper opening): above the block, down
to it, close, lift, carry above the bowl, lower, open, retreat. Between waypoints the pose moves along a
straight line with a smooth (cosine) speed profile, so the plan is a pure function of time since reset.

The approach axis leans ``APPROACH_TILT_DEG`` away from the robot inside the arm's vertical plane: a
5-joint arm can only point its gripper within that plane, and pointing straight down at the near edge of
the workspace needs more wrist flex than the SO-101 has. The SO-101's jaws close along the gripper
frame's x axis, radially at the home wrist roll. In ``joint`` mode the expert turns the wrist so that
axis meets the block face nearest to radial (block squared up between the jaws); in ``ee`` mode the action
cannot say the roll, so the IK keeps the home roll, and the grasp point is shifted so that the fixed jaw
clears the block's corner and the closing jaw squares the block up against it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from libs.sim.layout import GRIPPER_CLOSED

#: Lean of the approach axis from vertical, away from the robot (degrees); see module docstring.
APPROACH_TILT_DEG = 20.0
#: The shoulder pan axis's xy in the world: the arm's vertical plane contains it.
PAN_AXIS_XY = np.array([0.0388353, 0.0])
#: Gripper-frame height above the block centre before descending (m).
HOVER_HEIGHT_M = 0.07
#: Gripper-frame height at the grasp, relative to the block centre (m): fingertips just above the table.
GRASP_HEIGHT_OFFSET_M = 0.0
#: The fixed jaw's inner face is ~1.9 cm along the gripper frame's x axis and the closing jaw pushes the
#: block against it, so an aim error towards the fixed jaw lands that jaw on the block while one towards
#: the moving jaw is swept back. Aiming 4 mm towards the moving jaw (with the wider opening below) centres
#: that tolerance: measured over 6 seeds per direction, aim errors of 10 mm along the jaw axis either way
#: and across it still pick (the earlier +4 mm aim failed every seed 6 mm towards the fixed jaw). A
#: forgiving grasp is what lets a learned policy, whose aim is never exact, pick the block.
GRASP_X_OFFSET_M = -0.004
#: Gripper opening (0–100) on the way down: wide enough for the block's 3.5 cm diagonal and the aim
#: tolerance above, while the moving jaw's arc stays nearer the block than fully open.
GRASP_OPENING = 80.0
#: Height of the block centre while carried (m).
CARRY_HEIGHT_M = 0.10
#: Height of the block's bottom above the bowl floor at which it is released (m).
RELEASE_HEIGHT_M = 0.04
#: Opening (0–100) at the release: enough to let go of the block (held at ~14), small enough that the
#: moving jaw's arc does not sweep through the bowl and flick the block out (which fully open did).
RELEASE_OPENING = 30.0
#: Cartesian speed of the moves (m/s) and the shortest move (control steps).
MOVE_SPEED_M_S = 0.2
MIN_MOVE_STEPS = 12
CLOSE_STEPS = 15
OPEN_STEPS = 24


@dataclass(frozen=True)
class Waypoint:
    position: np.ndarray
    approach: np.ndarray
    x_axis: np.ndarray
    gripper: float
    steps: int  # control steps to reach this waypoint from the previous one


@dataclass(frozen=True)
class ExpertTarget:
    position: np.ndarray
    approach: np.ndarray
    x_axis: np.ndarray
    gripper: float


def approach_axis(xy: np.ndarray, tilt_deg: float = APPROACH_TILT_DEG) -> np.ndarray:
    """Unit approach vector at ``xy``: down, leaning ``tilt_deg`` away from the pan axis."""
    radial = np.asarray(xy, dtype=np.float64) - PAN_AXIS_XY
    radial /= max(np.linalg.norm(radial), 1e-9)
    tilt = math.radians(tilt_deg)
    return np.array([math.sin(tilt) * radial[0], math.sin(tilt) * radial[1], -math.cos(tilt)])


def jaw_axis(xy: np.ndarray, block_yaw: float) -> np.ndarray:
    """The block face normal (horizontal) closest to the inward radial direction at ``xy``.

    Closing radially keeps the wrist roll within 45° of home and sweeps the moving jaw along the arm,
    where the bowl (at least ``min_block_bowl_distance_m`` away) is rarely in its path.
    """
    inward = _inward(xy)[:2]
    normals = [
        np.array([math.cos(block_yaw + k * math.pi / 2), math.sin(block_yaw + k * math.pi / 2)])
        for k in range(4)
    ]
    best = max(normals, key=lambda n: float(np.dot(n, inward)))
    return np.array([best[0], best[1], 0.0])


def _inward(xy: np.ndarray) -> np.ndarray:
    radial = np.asarray(xy, dtype=np.float64) - PAN_AXIS_XY
    radial /= max(np.linalg.norm(radial), 1e-9)
    return np.array([-radial[0], -radial[1], 0.0])


def _move_steps(a: np.ndarray, b: np.ndarray) -> int:
    distance = float(np.linalg.norm(b - a))
    return max(MIN_MOVE_STEPS, math.ceil(distance / MOVE_SPEED_M_S * 30.0))


class ExpertPlan:
    """Waypoints for one episode and the target pose at any control step."""

    def __init__(
        self,
        start_position: np.ndarray,
        block_position: np.ndarray,
        block_yaw: float,
        bowl_position: np.ndarray,
        bowl_floor_z: float,
        block_size_m: float,
        align_jaws: bool = True,
    ) -> None:
        block = np.asarray(block_position, dtype=np.float64)
        bowl = np.asarray(bowl_position, dtype=np.float64)
        grasp_approach = approach_axis(block[:2])
        release_approach = approach_axis(bowl[:2])
        if align_jaws:
            jaws = jaw_axis(block[:2], block_yaw)
            release_jaws = _inward(bowl[:2])
        else:
            # Wrist roll at home: the jaws close along the radial direction, fixed jaw on the robot side.
            jaws, release_jaws = _inward(block[:2]), _inward(bowl[:2])
        # Shift the target so the block sits between the jaws where the closing jaws will hold it.
        grasp_x = jaws - np.dot(jaws, grasp_approach) * grasp_approach
        grasp_x /= np.linalg.norm(grasp_x)
        # A block turned against the jaws reaches further towards the fixed jaw (up to its half diagonal):
        # keep the fixed jaw clear of that corner, the closing jaw then squares the block up against it.
        half = block_size_m / 2
        turn = math.atan2(jaws[1], jaws[0]) - block_yaw
        reach = half * (abs(math.cos(turn)) + abs(math.sin(turn)))
        x_offset = GRASP_X_OFFSET_M - (reach - half)
        grasp = block + np.array([0, 0, GRASP_HEIGHT_OFFSET_M]) - x_offset * grasp_x
        hover = grasp + np.array([0, 0, HOVER_HEIGHT_M])
        lift = grasp.copy()
        lift[2] = CARRY_HEIGHT_M
        release_center = np.array([bowl[0], bowl[1], bowl_floor_z + block_size_m / 2 + RELEASE_HEIGHT_M])
        carry = release_center.copy()
        carry[2] = CARRY_HEIGHT_M
        retreat = release_center + np.array([0, 0, 0.06])
        start = np.asarray(start_position, dtype=np.float64)
        self.waypoints: list[Waypoint] = []

        def add(position: np.ndarray, approach: np.ndarray, x_axis: np.ndarray, gripper: float, steps: int):
            self.waypoints.append(Waypoint(position, approach, x_axis, gripper, steps))

        add(start, grasp_approach, jaws, GRASP_OPENING, 1)
        add(hover, grasp_approach, jaws, GRASP_OPENING, _move_steps(start, hover) + 6)
        add(grasp, grasp_approach, jaws, GRASP_OPENING, _move_steps(hover, grasp) + 6)
        add(grasp, grasp_approach, jaws, GRIPPER_CLOSED, CLOSE_STEPS)
        add(lift, grasp_approach, jaws, GRIPPER_CLOSED, _move_steps(grasp, lift) + 4)
        add(carry, release_approach, release_jaws, GRIPPER_CLOSED, _move_steps(lift, carry) + 6)
        add(
            release_center, release_approach, release_jaws, GRIPPER_CLOSED, _move_steps(carry, release_center)
        )
        add(release_center, release_approach, release_jaws, RELEASE_OPENING, OPEN_STEPS)
        add(retreat, release_approach, release_jaws, RELEASE_OPENING, MIN_MOVE_STEPS)
        self._ends = np.cumsum([w.steps for w in self.waypoints]) - 1

    @property
    def duration_steps(self) -> int:
        return int(self._ends[-1]) + 1

    def target(self, step: int) -> ExpertTarget:
        """Target pose for control step ``step`` (0 = the first action after reset)."""
        index = int(np.searchsorted(self._ends, step))
        if index >= len(self.waypoints) or index == 0:
            held = self.waypoints[-1 if index else 0]
            return ExpertTarget(held.position, approach_axis(held.position[:2]), held.x_axis, held.gripper)
        previous, current = self.waypoints[index - 1], self.waypoints[index]
        progress = (step - self._ends[index - 1]) / current.steps
        smooth = 0.5 - 0.5 * math.cos(math.pi * min(max(progress, 0.0), 1.0))
        position = (1 - smooth) * previous.position + smooth * current.position
        # The approach must stay in the arm's vertical plane, which turns with the gripper's position.
        approach = approach_axis(position[:2])
        x_axis = (1 - smooth) * previous.x_axis + smooth * current.x_axis
        if np.linalg.norm(x_axis) < 1e-6:
            x_axis = current.x_axis
        return ExpertTarget(
            position=position,
            approach=approach,
            x_axis=x_axis / np.linalg.norm(x_axis),
            gripper=float((1 - smooth) * previous.gripper + smooth * current.gripper),
        )
