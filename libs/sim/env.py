"""``SO101PickPlaceEnv``: put the block in the bowl, as a gymnasium env.

Observation (LeRobot keys, see ``libs.policy_api.types``): ``observation.state`` float32[6] (arm joints in
degrees, gripper 0–100), ``observation.images.<camera>`` uint8 H×W×3 per scene camera, plus
``observation.images.<camera>_depth`` float32 H×W metres for cameras declared ``depth``,
``observation.environment_state`` float32[9] (block pose, bowl xy; ``libs.sim.layout``) when the scene
sets ``environment_state``, and ``task``. Images are drawn on demand (``image_rendering="on_demand"``, the
default): an observation is a ``libs.policy_api.lazy_observation.LazyObservation`` whose images render when
first read, so steps nobody looks at cost physics only; ``"eager"`` draws every camera every step.
Actions: ``joint`` float32[6] absolute targets in the state's units, or ``ee`` float32[7]
``[x, y, z, tail_x, tail_y, tail_z, gripper]`` (``libs.sim.layout``) solved by IK every step
(``libs.sim.ik``).
Control runs at 30 Hz, ``PHYSICS_SUBSTEPS`` physics steps per control step.

``reset(seed=int)`` draws the block's position and yaw and the bowl's position from that seed alone, so
the same seed and the same actions replay the same trajectory. ``info["outcome"]`` is None until the
outcome is decided (success terminates the episode; ``max_steps`` truncates it and the final outcome is
classified then); ``episode_figures()`` summarises the episode.
"""

from __future__ import annotations

import copy
import math
import string
import weakref
from collections.abc import Sequence
from functools import partial
from numbers import Integral
from typing import Any, ClassVar, Literal

import gymnasium as gym
import mujoco
import numpy as np

from libs.errors import LabError
from libs.policy_api.lazy_observation import LazyImage, LazyObservation
from libs.policy_api.types import ENVIRONMENT_STATE_KEY, STATE_KEY, TASK_KEY
from libs.sim.ik import IKSolution
from libs.sim.layout import (
    ACTION_DIMS,
    CONTROL_HZ,
    EE_ACTION_NAMES,
    EE_LOWER,
    EE_TAIL_DISTANCE_M,
    EE_UPPER,
    ENVIRONMENT_STATE_DIM,
    JOINT_LOWER,
    JOINT_NAMES,
    JOINT_UPPER,
    ee_tail_distance,
    gripper_rad_to_env,
    joints_env_to_rad,
)
from libs.sim.outcome import EpisodeFigures, Outcome, OutcomeTracker, TaskProbe
from libs.sim.perturbations import Perturbation, PerturbedLoop
from libs.sim.physics import ControlStepResult, Physics
from libs.sim.scene_config import SceneConfig
from scenes.so101.scene import BLOCK_BODY, BOWL_BODY

DEFAULT_TASK = "Pick up the red block and put it in the blue bowl."
DEFAULT_MAX_STEPS = 300  # 10 s at 30 Hz; the scripted expert needs about 5 s
#: Arm pose at reset (env units): gripper ~17 cm above the table in front of the robot, pointing down,
#: open. Chosen so the wrist camera sees the whole workspace and every spawn point is a short move away.
HOME_JOINTS = np.array([0.0, -25.0, 20.0, 75.0, 0.0, 100.0], dtype=np.float32)
#: Control steps run at reset with the home target held, so the block settles on the table and the arm
#: finishes sagging under gravity before the first observation.
SETTLE_STEPS = 3
#: Bodies whose contacts with the block count as the fixed / moving jaw touching it.
FIXED_JAW_BODIES = ("gripper",)
MOVING_JAW_BODIES = ("moving_jaw_so101_v1",)
#: When camera images are drawn: when first read (``on_demand``), or every camera at every step (``eager``).
ImageRendering = Literal["on_demand", "eager"]
IMAGE_RENDERINGS: tuple[str, ...] = ("on_demand", "eager")


class SimInputError(LabError, ValueError):
    """Bad input to the simulation (action, seed, camera name); the message names the fix."""


def _check_env_options(action_space: str, max_steps: Any, image_rendering: str) -> None:
    """Raises ``SimInputError`` naming the fix for an unknown action space or image rendering, or a bad
    step limit."""
    if image_rendering not in IMAGE_RENDERINGS:
        raise SimInputError(
            f"image_rendering {image_rendering!r} is unknown: use 'on_demand' (images drawn when read) "
            "or 'eager' (every camera every step)"
        )
    if action_space not in ACTION_DIMS:
        raise SimInputError(f"action_space {action_space!r} is unknown: use 'joint' or 'ee'")
    if not isinstance(max_steps, Integral) or max_steps < 1:
        raise SimInputError(f"max_steps must be a positive int, got {max_steps!r}")


def _env_scene(
    scene: SceneConfig, cameras: Sequence[str] | None, perturbation: str | Perturbation | None
) -> tuple[SceneConfig, Perturbation | None]:
    """The scene the env simulates (only ``cameras``, if given; changed by the perturbation arm) and that
    arm, looked up in the scene when given by name."""
    if cameras is not None:
        unknown = [name for name in cameras if name not in scene.camera_names]
        if unknown:
            raise SimInputError(
                f"unknown camera {unknown[0]!r}: this scene has {', '.join(scene.camera_names)} "
                "(or add it to the SceneConfig)"
            )
        scene = scene.with_cameras(cameras)
    # A perturbation arm (declared in the scene, or given) changes the scene, the model and the loop.
    if isinstance(perturbation, str):
        perturbation = scene.perturbation(perturbation)
    if perturbation is not None:
        scene = perturbation.scene(scene)
    return scene, perturbation


class SO101PickPlaceEnv(gym.Env):
    """Block → bowl pick-and-place with the SO-101 arm (see module docstring)."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": int(CONTROL_HZ)}

    def __init__(
        self,
        scene: SceneConfig | None = None,
        action_space: str = "joint",
        max_steps: int = DEFAULT_MAX_STEPS,
        task: str = DEFAULT_TASK,
        *,
        render: bool = True,
        cameras: Sequence[str] | None = None,
        terminate_on_success: bool = True,
        render_mode: str | None = None,
        perturbation: str | Perturbation | None = None,
        image_rendering: ImageRendering = "on_demand",
    ) -> None:
        _check_env_options(action_space, max_steps, image_rendering)
        scene, perturbation = _env_scene(scene or SceneConfig(), cameras, perturbation)
        self.scene = scene
        self.action_space_name = action_space
        self.max_steps = int(max_steps)
        self.task = task
        self.render_images = bool(render)
        self.image_rendering = image_rendering
        self.terminate_on_success = terminate_on_success
        self.render_mode = render_mode

        #: The model, its live data, look-ups, control step and renderers; the env adds the task.
        self.physics = Physics(scene)
        self.model = self.physics.model
        self.data = self.physics.data
        self.perturbed = PerturbedLoop(perturbation, self.model, BLOCK_BODY)
        self.probe = self._make_task_probe()
        self.tracker = OutcomeTracker(scene.bowl_inner_radius_m)
        self._episode_seed: int | None = None
        self._needs_reset = True
        #: The moment the last observation shows, while an undrawn image of it may still be read.
        self._live_moment: weakref.ref[_Moment] | None = None

        self.action_space = self._make_action_space(action_space)
        self.observation_space = self._make_observation_space()

    def _make_task_probe(self) -> TaskProbe:
        """What the task reads from the simulation: block, bowl, jaw contacts and the gripper command."""
        gripper_actuator = self.physics.actuators[5]
        return TaskProbe(
            self.model,
            block_body=BLOCK_BODY,
            bowl_body=BOWL_BODY,
            fixed_jaw_bodies=FIXED_JAW_BODIES,
            moving_jaw_bodies=MOVING_JAW_BODIES,
            block_half_size_m=self.scene.block_size_m / 2,
            bowl_inner_radius_m=self.scene.bowl_inner_radius_m,
            bowl_rim_height_m=self.scene.bowl_wall_height_m,
            gripper_command=lambda data: gripper_rad_to_env(data.ctrl[gripper_actuator]),
        )

    # ---- spaces ------------------------------------------------------------------------------------
    @staticmethod
    def _make_action_space(action_space: str) -> gym.spaces.Box:
        if action_space == "joint":
            return gym.spaces.Box(JOINT_LOWER, JOINT_UPPER, dtype=np.float32)
        return gym.spaces.Box(EE_LOWER, EE_UPPER, dtype=np.float32)

    def _make_observation_space(self) -> gym.spaces.Dict:
        spaces: dict[str, gym.Space] = {
            # Joints sit a hair past their limits when pushed (soft constraints): widen by 2 units.
            STATE_KEY: gym.spaces.Box(JOINT_LOWER - 2.0, JOINT_UPPER + 2.0, dtype=np.float32),
            TASK_KEY: gym.spaces.Text(max_length=1000, charset=string.printable),
        }
        if self.scene.environment_state:
            spaces[ENVIRONMENT_STATE_KEY] = gym.spaces.Box(
                -np.inf, np.inf, (ENVIRONMENT_STATE_DIM,), dtype=np.float32
            )
        if self.render_images:
            for camera in self.scene.cameras:
                spaces[camera.rgb_key] = gym.spaces.Box(
                    0, 255, (camera.height, camera.width, 3), dtype=np.uint8
                )
                if camera.depth:
                    spaces[camera.depth_key] = gym.spaces.Box(
                        0.0, np.inf, (camera.height, camera.width), dtype=np.float32
                    )
        return gym.spaces.Dict(spaces)

    @property
    def action_names(self) -> tuple[str, ...]:
        return JOINT_NAMES if self.action_space_name == "joint" else EE_ACTION_NAMES

    @property
    def control_dt(self) -> float:
        return 1.0 / CONTROL_HZ

    # ---- state accessors ---------------------------------------------------------------------------
    @property
    def block_position(self) -> np.ndarray:
        return self.physics.block_position(self.data)

    @property
    def block_quat(self) -> np.ndarray:
        return self.physics.block_quat(self.data)

    @property
    def block_yaw(self) -> float:
        w, x, y, z = self.block_quat
        return math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))

    @property
    def bowl_position(self) -> np.ndarray:
        return self.physics.bowl_position(self.data)

    @property
    def ee_position(self) -> np.ndarray:
        return self.physics.ee_position(self.data)

    @property
    def ee_approach(self) -> np.ndarray:
        """Unit vector the gripper points along (the gripper frame's z axis)."""
        return self.physics.gripper_axis(self.data)

    def environment_state(self, data: mujoco.MjData | None = None) -> np.ndarray:
        """``observation.environment_state`` of ``data`` (default: the env's); see ``libs.sim.layout``."""
        return self.physics.environment_state(self.data if data is None else data)

    @property
    def episode_seed(self) -> int | None:
        return self._episode_seed

    def joint_state(self, data: mujoco.MjData | None = None) -> np.ndarray:
        """The six joints in env units (float32[6]) of ``data`` (default: the env's)."""
        return self.physics.joint_state(self.data if data is None else data)

    def privileged_state(self) -> dict[str, Any]:
        """What the scripted expert reads from the simulator, as plain numbers (msgpack-able): the snapshot a
        served expert plans from (``libs.policy_api.types.SharesPrivilegedState``)."""
        arm_ids = self.physics.actuators[:5]
        return {
            "action_space": self.action_space_name,
            "ee_position": np.asarray(self.ee_position, dtype=np.float64),
            "block_position": np.asarray(self.block_position, dtype=np.float64),
            "block_yaw": float(self.block_yaw),
            "bowl_position": np.asarray(self.bowl_position, dtype=np.float64),
            "block_size_m": float(self.scene.block_size_m),
            "step": int(self.tracker.steps),
            "arm_targets": np.asarray(self.data.ctrl[arm_ids], dtype=np.float64),
        }

    def episode_figures(self) -> EpisodeFigures:
        return self.tracker.figures()

    # ---- gymnasium API -----------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, Integral)):
            raise SimInputError(
                f"seed must be an int, got {type(seed).__name__} {seed!r}: pass e.g. seed=int(value)"
            )
        if seed is not None and seed < 0:
            raise SimInputError(f"seed must be >= 0, got {seed}")
        super().reset(seed=None if seed is None else int(seed))
        if seed is None:
            seed = int(self.np_random.integers(0, 2**31 - 1))
        self._episode_seed = int(seed)
        self._keep_live_moment()
        self.perturbed.on_reset(int(seed))
        layout = sample_layout(self.scene, int(seed), block_xy=_block_xy_option(options))
        half = self.scene.block_size_m / 2
        yaw = layout["block_yaw"]
        block_pose = [
            layout["block_xy"][0],
            layout["block_xy"][1],
            half,
            math.cos(yaw / 2),
            0.0,
            0.0,
            math.sin(yaw / 2),
        ]
        self.physics.place(self.data, joints_env_to_rad(HOME_JOINTS), block_pose, layout["bowl_xy"])
        for _ in range(SETTLE_STEPS):
            self.physics.step_physics(self.data)
        self.tracker.reset()
        self._needs_reset = False
        if self.render_images:
            for camera in self.scene.cameras:  # a missing GL backend is named here, not at the first read
                self.physics.renderer(camera.height, camera.width)
        return self.perturbed.observation(self._observation()), self._info(None, None)

    def step(self, action: np.ndarray) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        if self._needs_reset:
            raise SimInputError("step() called before reset(): call env.reset(seed=...) first")
        if self.perturbed.active:
            action = self.perturbed.action(self.validate_action(action), self.action_space_name)
        self._keep_live_moment()
        result = self.control_step(self.data, action)
        if self.action_space_name == "ee":
            self.tracker.record_ik(result.ik_error_m, result.ik_failed)
        outcome = self.tracker.update(self.probe.read(self.data))
        terminated = outcome is not None and (outcome != Outcome.SUCCESS or self.terminate_on_success)
        truncated = not terminated and self.tracker.steps >= self.max_steps
        if truncated or (terminated and outcome is not None):
            outcome = self.tracker.finish()
        if terminated or truncated:
            self._needs_reset = True
        reward = 1.0 if outcome == Outcome.SUCCESS else 0.0
        observation = self.perturbed.observation(self._observation())
        return observation, reward, terminated, truncated, self._info(outcome, result)

    def control_step(self, data: mujoco.MjData, action: np.ndarray) -> ControlStepResult:
        """Advance ``data`` (the env's or any copy) by one control step (``Physics.control_step``); no
        episode bookkeeping, no perturbation."""
        return self.physics.control_step(data, self.validate_action(action), self.action_space_name)

    def solve_ee(self, data: mujoco.MjData, position: np.ndarray, approach: np.ndarray) -> IKSolution:
        """Arm joints (rad) putting the gripper frame at ``position`` pointing along ``approach``,
        warm-started from ``data.ctrl`` (``Physics.solve_ee``)."""
        return self.physics.solve_ee(data, position, approach)

    # ---- validation --------------------------------------------------------------------------------
    def validate_action(self, action: Any) -> np.ndarray:
        """float32 action of this env's layout, or SimInputError naming the problem."""
        expected = ACTION_DIMS[self.action_space_name]
        try:
            array = np.asarray(action, dtype=np.float32)
        except (TypeError, ValueError) as error:
            raise SimInputError(
                f"action {action!r} is not numeric: pass a float array of shape ({expected},)"
            ) from error
        if array.shape != (expected,):
            hint = " (a chunk? pass one row per step)" if array.ndim == 2 else ""
            raise SimInputError(
                f"action has shape {array.shape}, expected ({expected},) for action_space="
                f"'{self.action_space_name}' [{', '.join(self.action_names)}]{hint}"
            )
        bad = np.flatnonzero(~np.isfinite(array))
        if bad.size:
            names = ", ".join(self.action_names[i] for i in bad)
            raise SimInputError(
                f"action has NaN/inf in {names}: the policy output is not finite (check its "
                "de-normalisation and checkpoint)"
            )
        if self.action_space_name == "ee" and ee_tail_distance(array) < 1e-6:
            raise SimInputError(
                "ee action's tail is at its position, so it has no approach direction: put the tail "
                f"{EE_TAIL_DISTANCE_M} m behind the gripper along the approach axis (libs.sim.layout)"
            )
        return array

    # ---- observations ------------------------------------------------------------------------------
    def _observation(self) -> dict[str, Any] | LazyObservation:
        observation: dict[str, Any] = {STATE_KEY: self.joint_state(), TASK_KEY: self.task}
        if self.scene.environment_state:
            observation[ENVIRONMENT_STATE_KEY] = self.environment_state()
        if not self.render_images:
            return observation
        if self.image_rendering == "eager":
            observation.update(self.render_cameras(self.data))
            return observation
        moment = _Moment(self.data)
        self._live_moment = weakref.ref(moment)
        images: dict[str, LazyImage] = {}
        for camera in self.scene.cameras:
            shape = (camera.height, camera.width)
            images[camera.rgb_key] = LazyImage(
                partial(self._draw, moment, camera.name, False), (*shape, 3), np.dtype(np.uint8)
            )
            if camera.depth:
                images[camera.depth_key] = LazyImage(
                    partial(self._draw, moment, camera.name, True), shape, np.dtype(np.float32)
                )
        return LazyObservation(observation, images)

    def _draw(self, moment: _Moment, camera: str, depth: bool) -> np.ndarray:
        return self.render_camera(camera, depth=depth, data=moment.data)

    def _keep_live_moment(self) -> None:
        """Before ``self.data`` changes: an observation someone still holds, with images not drawn yet, gets
        a copy of the state it shows (a few microseconds; nothing when it was dropped or fully read)."""
        moment = self._live_moment() if self._live_moment is not None else None
        if moment is not None and moment.data is self.data:
            moment.data = copy.copy(self.data)
        self._live_moment = None

    def render_cameras(self, data: mujoco.MjData | None = None) -> dict[str, np.ndarray]:
        """Images of every scene camera keyed by observation key (RGB, and depth where declared)."""
        data = self.data if data is None else data
        images: dict[str, np.ndarray] = {}
        for camera in self.scene.cameras:
            size = (camera.height, camera.width)
            images[camera.rgb_key] = self.physics.render(data, camera.name, *size)
            if camera.depth:
                images[camera.depth_key] = self.physics.render(data, camera.name, *size, depth=True)
        return images

    def render_camera(
        self, name: str, *, depth: bool = False, data: mujoco.MjData | None = None
    ) -> np.ndarray:
        """One camera's image at its configured size (works with render=False too)."""
        if name not in self.scene.camera_names:
            raise SimInputError(
                f"unknown camera {name!r}: this scene has {', '.join(self.scene.camera_names) or 'none'}"
            )
        camera = self.scene.camera(name)
        data = self.data if data is None else data
        return self.physics.render(data, name, camera.height, camera.width, depth=depth)

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array" or not self.scene.cameras:
            return None
        return self.render_camera(self.scene.cameras[0].name)

    def close(self) -> None:
        self.physics.close()

    def _info(self, outcome: Outcome | None, result: ControlStepResult | None) -> dict[str, Any]:
        state = self.tracker.last_state
        return {
            "outcome": None if outcome is None else str(outcome),
            "is_success": outcome == Outcome.SUCCESS,
            "seed": self._episode_seed,
            "step": self.tracker.steps,
            "picked": self.tracker.picked,
            "block_height_m": None if state is None else state.block_height_m,
            "ik_error_mm": None if result is None else 1000.0 * result.ik_error_m,
            "ik_failed": None if result is None else result.ik_failed,
            "joint_targets": None if result is None else result.joint_targets,
        }


class _Moment:
    """The simulator state an on-demand observation's images show: the env's live ``MjData`` until the env
    moves on while the observation is still held, then a copy of it."""

    __slots__ = ("data", "__weakref__")

    def __init__(self, data: mujoco.MjData) -> None:
        self.data = data


def _block_xy_option(options: dict[str, Any] | None) -> tuple[float, float] | None:
    """``options["block_xy"]`` (the --grid evaluations place the block) checked, or None.

    Other keys are ignored, as gymnasium envs do: wrappers add their own (LeRobot's vector env passes
    ``lerobot_new_rollout``)."""
    if not options:
        return None
    value = options.get("block_xy")
    if value is None:
        return None
    xy = np.asarray(value, dtype=np.float64)
    if xy.shape != (2,) or not np.all(np.isfinite(xy)):
        raise SimInputError(f"options['block_xy'] must be two finite metres (x, y), got {value!r}")
    return float(xy[0]), float(xy[1])


def sample_layout(
    scene: SceneConfig, seed: int, block_xy: tuple[float, float] | None = None
) -> dict[str, Any]:
    """Block xy + yaw and bowl xy for ``seed``: a pure function of (scene, seed, block_xy).

    ``block_xy`` pins the block (``--grid``); yaw and bowl are still drawn from the seed, with the same
    random stream as a free draw so a pinned and a free episode of one seed differ only in the block.
    """
    rng = np.random.default_rng(seed)
    (bx0, bx1), (by0, by1) = scene.block_region_xy
    (gx0, gx1), (gy0, gy1) = scene.bowl_region_xy
    drawn_xy = np.array([rng.uniform(bx0, bx1), rng.uniform(by0, by1)])
    block_xy = drawn_xy if block_xy is None else np.asarray(block_xy, dtype=np.float64)
    # A cube looks the same every quarter turn, so ±45° covers every yaw.
    block_yaw = float(rng.uniform(-math.pi / 4, math.pi / 4))
    for _ in range(1000):
        bowl_xy = np.array([rng.uniform(gx0, gx1), rng.uniform(gy0, gy1)])
        if np.linalg.norm(bowl_xy - block_xy) >= scene.min_block_bowl_distance_m:
            break
    else:
        raise SimInputError(
            "cannot place the bowl at min_block_bowl_distance_m from the block: widen bowl_region_xy"
        )
    return {"block_xy": block_xy, "block_yaw": block_yaw, "bowl_xy": bowl_xy}
