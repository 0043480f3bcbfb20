"""Inverse kinematics for the ``ee`` action: gripper position plus approach axis, solved with mink.

The SO-101 arm has five joints, so it cannot reach every full orientation: we ask for the gripper frame's
position and for its local z axis (wrist → fingertips, the "approach" axis) to point along the requested
unit vector, and leave the rotation about that axis free. Each iteration re-aims the orientation target by
the smallest rotation that takes the current approach axis onto the requested one, so the orientation
error mink sees never has a component about the approach axis (whose cost is zero anyway). The wrist roll
is then held near a reference (the previous target) by a light posture task.

Differential IK converges to a local solution; when it ends with a residual over the tolerance we restart
from a fixed set of configurations (deterministic, so trajectories replay exactly) and keep the best.
"""

from __future__ import annotations

from dataclasses import dataclass

import mink
import mujoco
import numpy as np

#: A solution further than this from the requested position counts as an IK failure. 5 mm is a fifth of
#: the block's side: larger errors make the expert's grasps fail, smaller ones are within the jitter of
#: reachable targets near the workspace edge.
IK_POSITION_TOLERANCE_M = 0.005
#: ...and likewise when the approach axis is off by more than this (0.1 rad ≈ 5.7°).
IK_ANGLE_TOLERANCE_RAD = 0.1
#: Iterations per attempt: warm-started targets along a smooth path converge in a few; cold restarts
#: need more.
IK_ITERATIONS_WARM = 12
IK_ITERATIONS_RESTART = 40
IK_RESTARTS = 4
_STOP_POSITION_M = 3e-4
_STOP_ANGLE_RAD = 5e-3
_STALL_RATIO = 0.97
#: Ranking attempts: metres, with 1 rad of approach error worth 5 cm.
_ANGLE_WEIGHT_M = 0.05
_DT = 1.0
_DAMPING = 1e-3
_POSTURE_COST = 1e-2
_RESTART_SEED = 20260101
#: Orientation cost per local axis: none about the approach axis (z) unless the roll is requested too.
_ORIENTATION_COST_APPROACH = np.array([0.3, 0.3, 0.0])
_ORIENTATION_COST_FULL = np.array([0.3, 0.3, 0.05])


@dataclass(frozen=True)
class IKSolution:
    """Arm joint angles (rad, five values) and how far they are from the request."""

    arm_joints: np.ndarray
    position_error_m: float
    angle_error_rad: float

    @property
    def failed(self) -> bool:
        return (
            self.position_error_m > IK_POSITION_TOLERANCE_M or self.angle_error_rad > IK_ANGLE_TOLERANCE_RAD
        )


def _minimal_rotation(from_axis: np.ndarray, to_axis: np.ndarray) -> np.ndarray:
    """Rotation matrix of the smallest rotation taking unit ``from_axis`` onto unit ``to_axis``."""
    cross = np.cross(from_axis, to_axis)
    sin = np.linalg.norm(cross)
    cos = float(np.dot(from_axis, to_axis))
    if sin < 1e-9:
        if cos > 0:
            return np.eye(3)
        # Opposite axes: rotate half a turn about any perpendicular axis.
        perpendicular = np.cross(from_axis, [1.0, 0.0, 0.0])
        if np.linalg.norm(perpendicular) < 1e-6:
            perpendicular = np.cross(from_axis, [0.0, 1.0, 0.0])
        axis = perpendicular / np.linalg.norm(perpendicular)
        return 2.0 * np.outer(axis, axis) - np.eye(3)
    axis = cross / sin
    skew = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    angle = np.arctan2(sin, cos)
    return np.eye(3) + np.sin(angle) * skew + (1 - np.cos(angle)) * skew @ skew


class ApproachIK:
    """Solves arm joints for (position, approach axis) of a site on a robot-only model.

    ``arm_qpos_indices`` are the qpos addresses of the five arm joints in that model; all other joints
    are held where ``solve`` is told they are.
    """

    def __init__(self, model: mujoco.MjModel, site: str, arm_joint_names: tuple[str, ...]) -> None:
        self.model = model
        self.site = site
        self.configuration = mink.Configuration(model)
        self.arm_qpos = np.array([model.joint(name).qposadr[0] for name in arm_joint_names])
        self.frame_task = mink.FrameTask(
            frame_name=site,
            frame_type="site",
            position_cost=1.0,
            orientation_cost=_ORIENTATION_COST_APPROACH,
            lm_damping=1e-3,
        )
        # Only the wrist roll is pulled toward the reference: the other arm joints are fixed by the five
        # position/approach constraints, and a pull on them would bias the solution off the target.
        posture_cost = np.zeros(model.nv)
        posture_cost[model.jnt_dofadr[model.joint(arm_joint_names[-1]).id]] = _POSTURE_COST
        self.posture_task = mink.PostureTask(model, cost=posture_cost)
        self.limits = [mink.ConfigurationLimit(model)]
        rng = np.random.default_rng(_RESTART_SEED)
        low = model.jnt_range[[model.joint(n).id for n in arm_joint_names], 0]
        high = model.jnt_range[[model.joint(n).id for n in arm_joint_names], 1]
        # Restarts drawn from the middle half of each range: the extremes are rarely where solutions are.
        middle = (low + high) / 2
        self._x_axis: np.ndarray | None = None
        #: Differential-IK iterations run so far (for benchmarks and tuning).
        self.iterations_total = 0
        self._restarts = middle + (rng.random((IK_RESTARTS, len(low))) - 0.5) * (high - low) / 2

    def solve(
        self,
        qpos: np.ndarray,
        target_position: np.ndarray,
        approach: np.ndarray,
        posture: np.ndarray | None = None,
        x_axis: np.ndarray | None = None,
    ) -> IKSolution:
        """Arm joints reaching ``target_position`` with the site's z axis along ``approach``.

        ``qpos`` is the robot model's full configuration to start from; ``posture`` (same layout, default
        ``qpos``) is the configuration the free rotation about the approach axis is pulled toward.
        ``x_axis``, when given, also fixes that rotation: the site's x axis (the direction the jaws close
        along) is aimed at ``x_axis`` projected off the approach axis. It is reachable when the approach
        lies in the arm's vertical plane; the scripted expert uses it to align the jaws with the block.
        """
        target_position = np.asarray(target_position, dtype=np.float64)
        approach = np.asarray(approach, dtype=np.float64)
        approach = approach / np.linalg.norm(approach)
        posture = np.array(qpos if posture is None else posture, dtype=np.float64)
        self.posture_task.set_target(posture)
        self._x_axis = None
        if x_axis is not None:
            x_axis = np.asarray(x_axis, dtype=np.float64)
            x_axis = x_axis - np.dot(x_axis, approach) * approach
            if np.linalg.norm(x_axis) < 1e-6:
                raise ValueError("x_axis is parallel to the approach axis: it cannot set the roll")
            self._x_axis = x_axis / np.linalg.norm(x_axis)
        self.frame_task.set_orientation_cost(
            _ORIENTATION_COST_FULL if self._x_axis is not None else _ORIENTATION_COST_APPROACH
        )
        best = self._attempt(np.array(qpos, dtype=np.float64), target_position, approach, IK_ITERATIONS_WARM)
        if not best.failed:
            return best
        for restart in self._restarts:
            start = posture.copy()
            start[self.arm_qpos] = restart
            candidate = self._attempt(start, target_position, approach, IK_ITERATIONS_RESTART)
            if _residual(candidate) < _residual(best):
                best = candidate
            if not best.failed:
                break
        return best

    def _attempt(
        self, qpos: np.ndarray, target_position: np.ndarray, approach: np.ndarray, iterations: int
    ) -> IKSolution:
        configuration = self.configuration
        configuration.update(qpos)
        position_error, angle_error = self._errors(target_position, approach)
        previous = np.inf
        for _ in range(iterations):
            residual = position_error + _ANGLE_WEIGHT_M * angle_error
            # Stop when close enough, or when an iteration no longer helps: a request slightly outside the
            # arm's reachable set has a residual floor that more iterations only creep towards.
            if (position_error < _STOP_POSITION_M and angle_error < _STOP_ANGLE_RAD) or (
                residual > _STALL_RATIO * previous
            ):
                break
            previous = residual
            self._aim(target_position, approach)
            self.iterations_total += 1
            velocity = mink.solve_ik(
                configuration,
                # With the roll requested the posture pull would only fight the orientation task.
                [self.frame_task] if self._x_axis is not None else [self.frame_task, self.posture_task],
                _DT,
                solver="daqp",
                damping=_DAMPING,
                limits=self.limits,
            )
            configuration.integrate_inplace(velocity, _DT)
            position_error, angle_error = self._errors(target_position, approach)
        return IKSolution(
            arm_joints=configuration.q[self.arm_qpos].copy(),
            position_error_m=float(position_error),
            angle_error_rad=float(angle_error),
        )

    def _site_pose(self) -> tuple[np.ndarray, np.ndarray]:
        data = self.configuration.data
        site = data.site(self.site)
        return site.xpos, site.xmat.reshape(3, 3)

    def _errors(self, target_position: np.ndarray, approach: np.ndarray) -> tuple[float, float]:
        position, rotation = self._site_pose()
        cos = float(np.clip(np.dot(rotation[:, 2], approach), -1.0, 1.0))
        return float(np.linalg.norm(position - target_position)), float(np.arccos(cos))

    def _aim(self, target_position: np.ndarray, approach: np.ndarray) -> None:
        _, rotation = self._site_pose()
        if self._x_axis is not None:
            target_rotation = np.column_stack([self._x_axis, np.cross(approach, self._x_axis), approach])
        else:
            target_rotation = _minimal_rotation(rotation[:, 2], approach) @ rotation
        quat = np.empty(4)
        mujoco.mju_mat2Quat(quat, target_rotation.reshape(-1))
        self.frame_task.set_target(mink.SE3.from_rotation_and_translation(mink.SO3(quat), target_position))


def _residual(solution: IKSolution) -> float:
    return solution.position_error_m + _ANGLE_WEIGHT_M * solution.angle_error_rad
