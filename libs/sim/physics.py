"""The SO-101 scene's physics, apart from the task (as dm_control keeps ``Physics`` apart from ``Task``).

``Physics`` owns the compiled scene model and the env's live ``MjData``, the index look-ups (arm joints,
actuators, block, bowl, gripper frame), placing a layout (reset), the control step (joint targets, or IK for
``ee`` actions, then ``PHYSICS_SUBSTEPS`` physics steps), the kinematic step (joints placed at their
targets, kinematics only), reading a state (joints, gripper frame, block, bowl) and the offscreen renderers.
``ArmKinematics`` is the arm alone (the robot spec, no scene): forward kinematics of the gripper frame and
the approach IK.

Every method takes the ``MjData`` to act on, so the env's live data and any copy of it (a whisker forecast's
scratch data, an on-demand observation's moment) go through the same code, bit for bit. The task — layouts
drawn from a seed, outcomes, observations, perturbations — stays in ``libs.sim.env``.

Users: ``libs.sim.env`` (the task), ``libs.viz.whiskers`` (forecasts from a copy of the state),
``libs.viz.video`` (renderer settings) and ``libs.datasets.convert`` (joint → ee actions by forward
kinematics).
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
    ee_approach,
    gripper_env_to_rad,
    joints_env_to_rad,
    joints_rad_to_env,
)
from libs.sim.layout import environment_state as environment_state_vector
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


def qpos_addresses(model: mujoco.MjModel, joint_names: tuple[str, ...]) -> np.ndarray:
    """The qpos address of each named (hinge or slide) joint."""
    return np.array([model.joint(name).qposadr[0] for name in joint_names])


class ArmKinematics:
    """The SO-101 arm alone: forward kinematics of the gripper frame and the approach IK (the scene adds
    nothing to the arm's chain)."""

    def __init__(self) -> None:
        self.model = build_robot_spec().compile()
        self.data = mujoco.MjData(self.model)
        self.arm_qpos = qpos_addresses(self.model, JOINT_NAMES)
        self.ee_site = self.model.site(EE_SITE).id
        self._ik: ApproachIK | None = None

    @property
    def ik(self) -> ApproachIK:
        """The approach IK of the five arm joints (built on first use: most users never solve)."""
        if self._ik is None:
            self._ik = ApproachIK(self.model, EE_SITE, ARM_JOINT_NAMES)
        return self._ik

    def solve(self, arm_start_rad: np.ndarray, position: np.ndarray, approach: np.ndarray) -> IKSolution:
        """Arm joints (rad) putting the gripper frame at ``position`` pointing along ``approach``,
        warm-started from the five arm joints ``arm_start_rad``."""
        ik = self.ik
        start = np.zeros(self.model.nq)
        start[ik.arm_qpos] = arm_start_rad
        return ik.solve(start, position, approach)

    def ee_poses(self, joints_env: np.ndarray) -> np.ndarray:
        """(N, 6) joints in env units → (N, 6) gripper-frame position and unit approach axis (its z axis)."""
        result = np.empty((len(joints_env), 6), dtype=np.float64)
        for row, joints in enumerate(joints_env):
            self.data.qpos[self.arm_qpos] = joints_env_to_rad(joints)
            mujoco.mj_kinematics(self.model, self.data)
            result[row, :3] = self.data.site_xpos[self.ee_site]
            result[row, 3:] = self.data.site_xmat[self.ee_site].reshape(3, 3)[:, 2]
        return result


class Physics:
    """The compiled scene, its live ``MjData`` and everything done to an ``MjData`` of it (see the module
    docstring). Actions given to it are already validated (``SO101PickPlaceEnv.validate_action``)."""

    def __init__(self, scene: SceneConfig) -> None:
        self.scene = scene
        self.model = build_scene_spec(scene).compile()
        self.data = mujoco.MjData(self.model)
        model = self.model
        self.arm_qpos = qpos_addresses(model, JOINT_NAMES)
        self.gripper_qpos = self.arm_qpos[5]
        self.actuators = np.array([model.actuator(name).id for name in JOINT_NAMES])
        self.ctrl_low = model.actuator_ctrlrange[self.actuators, 0].copy()
        self.ctrl_high = model.actuator_ctrlrange[self.actuators, 1].copy()
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

    def ee_position(self, data: mujoco.MjData) -> np.ndarray:
        """The gripper frame's position (world, metres)."""
        return data.site_xpos[self.ee_site].copy()

    def gripper_axis(self, data: mujoco.MjData) -> np.ndarray:
        """Unit vector the gripper points along (the gripper frame's z axis); named apart from
        ``libs.sim.layout.ee_approach``, which reads the direction out of an ee action."""
        return data.site_xmat[self.ee_site].reshape(3, 3)[:, 2].copy()

    def block_position(self, data: mujoco.MjData) -> np.ndarray:
        return data.xpos[self.block_body].copy()

    def block_quat(self, data: mujoco.MjData) -> np.ndarray:
        return data.xquat[self.block_body].copy()

    def bowl_position(self, data: mujoco.MjData) -> np.ndarray:
        """Where the bowl was placed (its mocap position)."""
        return data.mocap_pos[self.bowl_mocap].copy()

    def environment_state(self, data: mujoco.MjData) -> np.ndarray:
        """``observation.environment_state`` of ``data``; see ``libs.sim.layout``."""
        return environment_state_vector(
            data.xpos[self.block_body], data.xquat[self.block_body], data.mocap_pos[self.bowl_mocap]
        )

    # ---- placing a state ---------------------------------------------------------------------------
    def place(
        self,
        data: mujoco.MjData,
        arm_joints_rad: np.ndarray,
        block_pose: list[float],
        bowl_xy: tuple[float, float],
    ) -> None:
        """Reset ``data`` to the arm at (and targeting) ``arm_joints_rad``, the block's free joint at
        ``block_pose`` (x, y, z, qw, qx, qy, qz) and the bowl at ``bowl_xy`` on the table; positions are
        computed (``mj_forward``) but no time passes."""
        mujoco.mj_resetData(self.model, data)
        data.qpos[self.arm_qpos] = arm_joints_rad
        data.ctrl[self.actuators] = arm_joints_rad
        data.qpos[self.block_qpos : self.block_qpos + 7] = block_pose
        data.mocap_pos[self.bowl_mocap] = [bowl_xy[0], bowl_xy[1], 0.0]
        mujoco.mj_forward(self.model, data)

    # ---- stepping a state --------------------------------------------------------------------------
    def control_step(self, data: mujoco.MjData, action: np.ndarray, action_space: str) -> ControlStepResult:
        """Advance ``data`` by one control step of a validated ``action``: targets (IK for ``ee``), clipped
        to the actuators' range, held for ``PHYSICS_SUBSTEPS`` physics steps."""
        targets_rad, result = self._targets(data, action, action_space)
        data.ctrl[self.actuators] = np.clip(targets_rad, self.ctrl_low, self.ctrl_high)
        self.step_physics(data)
        return result

    def kinematic_step(self, data: mujoco.MjData, action: np.ndarray, action_space: str) -> ControlStepResult:
        """Place the joints at the step's (clipped) targets and run kinematics only: no dynamics, no
        contacts, the block stays where it is."""
        targets_rad, result = self._targets(data, action, action_space)
        if action_space == "ee":
            # From a Python float, as the kinematic whiskers always computed it (the control step converts
            # the float32 value): kinematic forecasts stay bit-identical to earlier recordings.
            targets_rad[5] = gripper_env_to_rad(float(action[6]))
        targets_rad = np.clip(targets_rad, self.ctrl_low, self.ctrl_high)
        data.ctrl[self.actuators] = targets_rad
        data.qpos[self.arm_qpos] = targets_rad
        self.kinematics(data)
        return result

    def joint_ctrl(self, joint_actions: np.ndarray) -> np.ndarray:
        """(T, 6) actuator targets (rad, clipped) of validated joint actions, every row at once: the same
        float64 operations ``control_step`` applies to one row, so the result is bit-identical."""
        return np.clip(joints_env_to_rad(joint_actions), self.ctrl_low, self.ctrl_high)

    def hold_ctrl(self, data: mujoco.MjData, ctrl: np.ndarray) -> None:
        """One control step with actuator targets already computed (a ``joint_ctrl`` row)."""
        data.ctrl[self.actuators] = ctrl
        self.step_physics(data)

    def step_physics(self, data: mujoco.MjData) -> None:
        """One control period of physics with the actuator targets ``data.ctrl`` holds."""
        mujoco.mj_step(self.model, data, nstep=PHYSICS_SUBSTEPS)

    def kinematics(self, data: mujoco.MjData) -> None:
        """Positions of every body and site from ``data.qpos`` (after ``mj_step`` they lag it by one
        substep); velocities and contacts are left as they are."""
        mujoco.mj_kinematics(self.model, data)

    def forward(self, data: mujoco.MjData) -> None:
        """Everything derived from ``data.qpos``/``qvel`` (positions, contacts), without advancing time."""
        mujoco.mj_forward(self.model, data)

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
        solution = self.solve_ee(data, action[:3], ee_approach(action))
        targets_rad = np.empty(6)
        targets_rad[:5] = solution.arm_joints
        targets_rad[5] = gripper_env_to_rad(action[6])
        return targets_rad, ControlStepResult(
            joint_targets=joints_rad_to_env(targets_rad),
            ik_error_m=solution.position_error_m,
            ik_failed=solution.failed,
        )

    # ---- rendering ---------------------------------------------------------------------------------
    def renderer(self, height: int, width: int) -> mujoco.Renderer:
        """The offscreen renderer of this size (one per size, kept until ``close``)."""
        key = (height, width)
        if key not in self._renderers:
            self._renderers[key] = offscreen_renderer(self.model, height, width)
        return self._renderers[key]

    def render(
        self, data: mujoco.MjData, camera: str, height: int, width: int, *, depth: bool = False
    ) -> np.ndarray:
        """One camera's image of ``data``: uint8 H×W×3 RGB, or float32 H×W metres with ``depth``."""
        renderer = self.renderer(height, width)
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
