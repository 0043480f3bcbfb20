"""The SO-101 scene's physics, apart from the task (as dm_control keeps ``Physics`` apart from ``Task``).

``Physics`` owns the compiled scene model, the index look-ups (arm joints, actuators, block, bowl, gripper
frame), the control step (joint targets, or IK for ``ee`` actions, then ``PHYSICS_SUBSTEPS`` physics
steps), the kinematic step (joints placed at their targets, forward kinematics only) and the offscreen
renderers. ``ArmKinematics`` is the arm alone (the robot spec, no scene): forward kinematics and the
approach IK. Every function takes the ``MjData`` to act on, so the env's live data and any copy (a whisker
forecast's scratch data) are stepped by the same code, bit for bit.

Users: ``libs.sim.env`` (the task: reset, rewards, outcomes, observations), ``libs.viz.whiskers`` (forecasts
from a copy of the state) and ``libs.datasets.convert`` (joint → ee actions by forward kinematics).
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from libs.sim.gl import make_renderer
from libs.sim.ik import ApproachIK, IKSolution
from libs.sim.layout import (
    ARM_JOINT_NAMES,
    JOINT_NAMES,
    gripper_env_to_rad,
    joints_env_to_rad,
    joints_rad_to_env,
)
from libs.sim.scene_config import SceneConfig
from scenes.so101.scene import (
    BLOCK_BODY,
    BLOCK_JOINT,
    BOWL_BODY,
    EE_SITE,
    PHYSICS_SUBSTEPS,
    build_robot_spec,
    build_scene_spec,
)


@dataclass(frozen=True)
class ControlStepResult:
    """What one control step did besides advancing physics: the IK residual in ``ee`` mode."""

    joint_targets: np.ndarray  # env units, float32[6]
    ik_error_m: float = 0.0
    ik_failed: bool = False


def offscreen_renderer(model: mujoco.MjModel, height: int, width: int) -> mujoco.Renderer:
    """A renderer without shadows and reflections: they cost CPU time and nothing a policy or a video
    needs (the lights cast none)."""
    renderer = make_renderer(model, height, width)
    renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
    renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
    return renderer


class ArmKinematics:
    """The SO-101 arm alone: forward kinematics of the gripper frame and the approach IK."""

    def __init__(self) -> None:
        self.model = build_robot_spec().compile()
        self.data = mujoco.MjData(self.model)
        self.arm_qpos = np.array([self.model.joint(name).qposadr[0] for name in JOINT_NAMES])
        self.ee_site = self.model.site(EE_SITE).id
        self._ik: ApproachIK | None = None

    def solve(self, arm_start_rad: np.ndarray, position: np.ndarray, approach: np.ndarray) -> IKSolution:
        """Arm joints (rad) putting the gripper frame at ``position`` pointing along ``approach``,
        warm-started from the five arm joints ``arm_start_rad``."""
        if self._ik is None:
            self._ik = ApproachIK(self.model, EE_SITE, ARM_JOINT_NAMES)
        start = np.zeros(self.model.nq)
        start[self._ik.arm_qpos] = arm_start_rad
        return self._ik.solve(start, position, approach)

    def ee_poses(self, joints_env: np.ndarray) -> np.ndarray:
        """(N, 6) joints in env units → (N, 6) ``[x, y, z, approach_x, approach_y, approach_z]``."""
        result = np.empty((len(joints_env), 6), dtype=np.float64)
        for row, joints in enumerate(joints_env):
            self.data.qpos[self.arm_qpos] = joints_env_to_rad(joints)
            mujoco.mj_kinematics(self.model, self.data)
            result[row, :3] = self.data.site_xpos[self.ee_site]
            result[row, 3:] = self.data.site_xmat[self.ee_site].reshape(3, 3)[:, 2]
        return result


class Physics:
    """The compiled scene and everything done to an ``MjData`` of it (see the module docstring)."""

    def __init__(self, scene: SceneConfig) -> None:
        self.scene = scene
        self.model = build_scene_spec(scene).compile()
        self.data = mujoco.MjData(self.model)
        model = self.model
        self.arm_qpos = np.array([model.joint(name).qposadr[0] for name in JOINT_NAMES])
        self.actuators = np.array([model.actuator(name).id for name in JOINT_NAMES])
        self.ctrl_low = model.actuator_ctrlrange[self.actuators, 0].copy()
        self.ctrl_high = model.actuator_ctrlrange[self.actuators, 1].copy()
        self.gripper_qpos = self.arm_qpos[5]
        self.block_qpos = model.joint(BLOCK_JOINT).qposadr[0]
        self.block_body = model.body(BLOCK_BODY).id
        self.bowl_body = model.body(BOWL_BODY).id
        self.bowl_mocap = model.body(BOWL_BODY).mocapid[0]
        self.ee_site = model.site(EE_SITE).id
        self._arm: ArmKinematics | None = None
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}

    # ---- reading a state ---------------------------------------------------------------------------
    def joint_state(self, data: mujoco.MjData) -> np.ndarray:
        """The six joints in env units (float32[6])."""
        return joints_rad_to_env(data.qpos[self.arm_qpos])

    def ee_approach(self, data: mujoco.MjData) -> np.ndarray:
        """Unit vector the gripper points along (the gripper frame's z axis)."""
        return data.site_xmat[self.ee_site].reshape(3, 3)[:, 2].copy()

    # ---- stepping a state --------------------------------------------------------------------------
    def control_step(self, data: mujoco.MjData, action: np.ndarray, action_space: str) -> ControlStepResult:
        """Advance ``data`` by one control step of a validated ``action``: targets (IK for ``ee``), clipped
        to the actuators' range, held for ``PHYSICS_SUBSTEPS`` physics steps."""
        targets_rad, result = self._targets(data, action, action_space)
        data.ctrl[self.actuators] = np.clip(targets_rad, self.ctrl_low, self.ctrl_high)
        self.step_physics(data)
        return result

    def kinematic_step(self, data: mujoco.MjData, action: np.ndarray, action_space: str) -> ControlStepResult:
        """Place the joints at the step's (clipped) targets and run forward kinematics only: no dynamics, no
        contacts, the block stays where it is."""
        targets_rad, result = self._targets(data, action, action_space)
        targets_rad = np.clip(targets_rad, self.ctrl_low, self.ctrl_high)
        data.ctrl[self.actuators] = targets_rad
        data.qpos[self.arm_qpos] = targets_rad
        mujoco.mj_kinematics(self.model, data)
        return result

    def joint_ctrl(self, joint_actions: np.ndarray) -> np.ndarray:
        """(T, 6) actuator targets (rad, clipped) of validated joint actions, every row at once: the same
        float64 operations ``control_step`` applies to one row, so the result is bit-identical."""
        return np.clip(joints_env_to_rad(joint_actions), self.ctrl_low, self.ctrl_high)

    def step_physics(self, data: mujoco.MjData) -> None:
        """One control period of physics with the actuator targets ``data.ctrl`` holds."""
        mujoco.mj_step(self.model, data, nstep=PHYSICS_SUBSTEPS)

    def solve_ee(self, data: mujoco.MjData, position: np.ndarray, approach: np.ndarray) -> IKSolution:
        """Arm joints (rad) putting the gripper frame at ``position`` pointing along ``approach``.

        Warm-started from ``data``'s current arm targets (``data.ctrl``) so a copied ``MjData`` solves
        exactly as the original would; the rotation about the approach axis stays near that target.
        """
        if self._arm is None:
            self._arm = ArmKinematics()
        return self._arm.solve(data.ctrl[self.actuators[:5]], position, approach)

    def _targets(
        self, data: mujoco.MjData, action: np.ndarray, action_space: str
    ) -> tuple[np.ndarray, ControlStepResult]:
        if action_space == "joint":
            return joints_env_to_rad(action), ControlStepResult(joint_targets=action.copy())
        solution = self.solve_ee(data, action[:3], action[3:6])
        targets_rad = np.empty(6)
        targets_rad[:5] = solution.arm_joints
        targets_rad[5] = gripper_env_to_rad(action[6])
        return targets_rad, ControlStepResult(
            joint_targets=joints_rad_to_env(targets_rad),
            ik_error_m=solution.position_error_m,
            ik_failed=solution.failed,
        )

    # ---- rendering ---------------------------------------------------------------------------------
    def render(
        self, data: mujoco.MjData, camera: str, height: int, width: int, *, depth: bool = False
    ) -> np.ndarray:
        """One camera's image of ``data``: uint8 H×W×3 RGB, or float32 H×W metres with ``depth``."""
        key = (height, width)
        if key not in self._renderers:
            self._renderers[key] = offscreen_renderer(self.model, height, width)
        renderer = self._renderers[key]
        if depth:
            renderer.enable_depth_rendering()
        try:
            renderer.update_scene(data, camera=camera)
            image = renderer.render()
        finally:
            if depth:
                renderer.disable_depth_rendering()
        return image.astype(np.float32, copy=True) if depth else image.copy()

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()
