"""The scene's cameras and task geometry as one serialisable object (``scene.json``).

Every recorded dataset and every evaluation stores this object, so a scene whose cameras differ from
the ones a policy was trained with (the 58° vs 52° field-of-view mistake) is caught by
``SceneConfig.differences`` instead of silently costing success rate.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from libs.errors import LabError
from libs.policy_api.types import DEPTH_SUFFIX, IMAGE_KEY_PREFIX, CameraInput
from libs.sim.perturbations import Perturbation, PerturbationError

SCENE_CONFIG_FORMAT_VERSION = 1
#: Parent of a camera fixed in the world rather than on a robot body.
WORLD = "world"
#: Two float fields differing by less than this are the same (json round trips, float32 copies).
_FLOAT_TOLERANCE = 1e-6


class SceneConfigError(LabError, ValueError):
    """A scene config is malformed or unreadable; the message names the fix."""


def quat_looking_at(
    position: Sequence[float], target: Sequence[float], up: Sequence[float] = (0.0, 0.0, 1.0)
) -> tuple[float, float, float, float]:
    """MuJoCo camera quaternion (w, x, y, z) at ``position`` looking at ``target``.

    A MuJoCo camera looks along its frame's -z axis with +y up in the image.
    """
    position_arr, target_arr, up_arr = (np.asarray(v, dtype=np.float64) for v in (position, target, up))
    backward = position_arr - target_arr
    backward /= np.linalg.norm(backward)
    right = np.cross(up_arr, backward)
    if np.linalg.norm(right) < 1e-9:
        raise SceneConfigError("camera 'up' vector is parallel to its viewing direction: pick another up")
    right /= np.linalg.norm(right)
    image_up = np.cross(backward, right)
    rotation = np.column_stack([right, image_up, backward])
    return _matrix_to_quat(rotation)


def quat_from_euler_xyz(euler: Sequence[float]) -> tuple[float, float, float, float]:
    """Quaternion of MuJoCo's default intrinsic x-y-z Euler sequence (radians)."""
    quat = np.array([1.0, 0.0, 0.0, 0.0])
    for axis, angle in enumerate(euler):
        half = 0.5 * float(angle)
        step = np.zeros(4)
        step[0] = math.cos(half)
        step[1 + axis] = math.sin(half)
        quat = _quat_multiply(quat, step)
    return tuple(float(v) for v in quat)  # type: ignore[return-value]


def _quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return np.array(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ]
    )


def _matrix_to_quat(rotation: np.ndarray) -> tuple[float, float, float, float]:
    trace = np.trace(rotation)
    if trace > 0:
        s = 2.0 * math.sqrt(1.0 + trace)
        quat = [
            0.25 * s,
            (rotation[2, 1] - rotation[1, 2]) / s,
            (rotation[0, 2] - rotation[2, 0]) / s,
            (rotation[1, 0] - rotation[0, 1]) / s,
        ]
    else:
        i = int(np.argmax(np.diag(rotation)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * math.sqrt(1.0 + rotation[i, i] - rotation[j, j] - rotation[k, k])
        quat = [0.0, 0.0, 0.0, 0.0]
        quat[0] = (rotation[k, j] - rotation[j, k]) / s
        quat[1 + i] = 0.25 * s
        quat[1 + j] = (rotation[j, i] + rotation[i, j]) / s
        quat[1 + k] = (rotation[k, i] + rotation[i, k]) / s
    norm = math.sqrt(sum(v * v for v in quat))
    sign = 1.0 if quat[0] >= 0 else -1.0
    return tuple(sign * v / norm for v in quat)  # type: ignore[return-value]


@dataclass(frozen=True)
class CameraConfig:
    """One camera: where it is, what it sees, what it emits.

    ``position``/``quat`` (w, x, y, z) are relative to ``body`` (``"world"`` or a robot body name such as
    ``"gripper"`` for a wrist camera). ``fovy_deg`` is the vertical field of view. Images are rendered
    at exactly ``height`` × ``width``. ``depth=True`` adds a float32 depth image (metres) under
    ``observation.images.<name>_depth``.
    """

    name: str
    position: tuple[float, float, float]
    quat: tuple[float, float, float, float]
    fovy_deg: float
    height: int = 96
    width: int = 128
    depth: bool = False
    body: str = WORLD

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").isalnum():
            raise SceneConfigError(f"camera name {self.name!r} must be non-empty letters, digits and '_'")
        if self.name.endswith(DEPTH_SUFFIX):
            raise SceneConfigError(
                f"camera name {self.name!r} ends with {DEPTH_SUFFIX!r}, which is reserved for depth keys: "
                "rename it and set depth=True instead"
            )
        if not (0 < self.fovy_deg < 180):
            raise SceneConfigError(f"camera {self.name!r}: fovy_deg={self.fovy_deg} must be in (0, 180)")
        if self.height < 1 or self.width < 1:
            raise SceneConfigError(
                f"camera {self.name!r}: image size {self.height}x{self.width} must be >= 1"
            )
        object.__setattr__(self, "position", tuple(float(v) for v in self.position))
        object.__setattr__(self, "quat", tuple(float(v) for v in self.quat))
        object.__setattr__(self, "fovy_deg", float(self.fovy_deg))
        if len(self.position) != 3 or len(self.quat) != 4:
            raise SceneConfigError(f"camera {self.name!r}: position needs 3 numbers and quat 4 (w, x, y, z)")

    @classmethod
    def looking_at(
        cls,
        name: str,
        position: Sequence[float],
        target: Sequence[float],
        up: Sequence[float] = (0.0, 0.0, 1.0),
        **kwargs: Any,
    ) -> CameraConfig:
        """A world camera at ``position`` aimed at ``target``."""
        return cls(name=name, position=tuple(position), quat=quat_looking_at(position, target, up), **kwargs)

    @property
    def rgb_key(self) -> str:
        return f"{IMAGE_KEY_PREFIX}{self.name}"

    @property
    def depth_key(self) -> str:
        return f"{IMAGE_KEY_PREFIX}{self.name}{DEPTH_SUFFIX}"

    def camera_inputs(self) -> tuple[CameraInput, ...]:
        """The policy inputs this camera provides (RGB, and depth when declared)."""
        rgb = CameraInput(self.name, self.height, self.width, "rgb")
        if not self.depth:
            return (rgb,)
        return (rgb, CameraInput(self.name, self.height, self.width, "depth"))


def default_cameras(height: int = 96, width: int = 128, depth: bool = False) -> tuple[CameraConfig, ...]:
    """The bench's two cameras: one above the table looking down, one on the gripper.

    The overhead camera's 52° vertical FOV from 0.55 m frames the whole ~0.5 m workspace; the wrist pose
    and 48.5° FOV are the menagerie model's wrist camera (its PROVENANCE notes how 48.5° was derived).
    """
    overhead = CameraConfig.looking_at(
        "overhead",
        position=(0.20, 0.0, 0.55),
        target=(0.20, 0.0, 0.0),
        up=(1.0, 0.0, 0.0),
        fovy_deg=52.0,
        height=height,
        width=width,
        depth=depth,
    )
    wrist = CameraConfig(
        name="wrist",
        body="gripper",
        position=(0.0, 0.055, -0.045),
        quat=quat_from_euler_xyz((-0.57, 0.0, 0.0)),
        fovy_deg=48.5,
        height=height,
        width=width,
        depth=depth,
    )
    return (overhead, wrist)


@dataclass(frozen=True)
class SceneConfig:
    """Everything about the scene a policy could notice: cameras, objects, randomisation ranges.

    ``simplify_render_meshes`` swaps the arm's display meshes for vertex-clustered copies
    (``render_mesh_cluster_m`` grid) so CPU rendering is cheaper; collision geometry never changes.
    """

    cameras: tuple[CameraConfig, ...] = field(default_factory=default_cameras)
    block_size_m: float = 0.025
    block_mass_kg: float = 0.02
    block_rgba: tuple[float, float, float, float] = (0.85, 0.15, 0.12, 1.0)
    bowl_inner_radius_m: float = 0.055
    bowl_wall_height_m: float = 0.03
    bowl_rgba: tuple[float, float, float, float] = (0.2, 0.45, 0.8, 1.0)
    table_rgba: tuple[float, float, float, float] = (0.55, 0.45, 0.35, 1.0)
    #: Block and bowl centres are drawn uniformly from these boxes (x range, y range), metres. Closer than
    #: ~13 cm to the shoulder pan axis (x = 3.9 cm) the arm cannot reach down to the table with its wrist
    #: leaning outward, so the boxes start at x = 0.17 / 0.16.
    block_region_xy: tuple[tuple[float, float], tuple[float, float]] = ((0.17, 0.27), (-0.12, 0.12))
    bowl_region_xy: tuple[tuple[float, float], tuple[float, float]] = ((0.16, 0.27), (-0.14, 0.14))
    #: Minimum block–bowl centre distance so the block never spawns in or under the bowl rim.
    min_block_bowl_distance_m: float = 0.11
    simplify_render_meshes: bool = True
    render_mesh_cluster_m: float = 0.002
    #: Emit ``observation.environment_state`` (block pose, bowl position; ``libs.sim.layout``) with every
    #: observation: privileged object state for state-based policies. A policy trained with it needs it.
    environment_state: bool = False
    format_version: int = SCENE_CONFIG_FORMAT_VERSION
    #: Named perturbation arms a sweep may run against this scene as the control (libs.sim.perturbations).
    perturbations: tuple[Perturbation, ...] = ()

    def __post_init__(self) -> None:
        cameras = tuple(
            camera if isinstance(camera, CameraConfig) else CameraConfig(**camera) for camera in self.cameras
        )
        object.__setattr__(self, "cameras", cameras)
        names = [camera.name for camera in cameras]
        if len(set(names)) != len(names):
            raise SceneConfigError(f"camera names must be unique, got {names}")
        if self.block_size_m <= 0 or self.bowl_inner_radius_m <= self.block_size_m:
            raise SceneConfigError("the bowl's inner radius must be larger than the block")
        try:
            arms = tuple(
                arm if isinstance(arm, Perturbation) else Perturbation.from_dict(arm)
                for arm in self.perturbations
            )
        except PerturbationError as error:
            raise SceneConfigError(str(error)) from None
        arm_names = [arm.name for arm in arms]
        if len(set(arm_names)) != len(arm_names):
            raise SceneConfigError(f"perturbation names must be unique, got {arm_names}")
        object.__setattr__(self, "perturbations", arms)

    def perturbation(self, name: str) -> Perturbation:
        for arm in self.perturbations:
            if arm.name == name:
                return arm
        declared = ", ".join(arm.name for arm in self.perturbations) or "none"
        raise SceneConfigError(
            f"unknown perturbation {name!r}: this scene declares {declared}; add it to the scene's "
            "'perturbations' list"
        )

    # ---- cameras -----------------------------------------------------------------------------------
    @property
    def camera_names(self) -> tuple[str, ...]:
        return tuple(camera.name for camera in self.cameras)

    def camera(self, name: str) -> CameraConfig:
        for camera in self.cameras:
            if camera.name == name:
                return camera
        raise SceneConfigError(
            f"unknown camera {name!r}: this scene has {', '.join(self.camera_names) or 'no cameras'}"
        )

    def camera_inputs(self) -> tuple[CameraInput, ...]:
        return tuple(item for camera in self.cameras for item in camera.camera_inputs())

    def with_cameras(self, names: Sequence[str]) -> SceneConfig:
        """The same scene keeping only ``names`` (in that order); unknown names raise SceneConfigError."""
        return replace(self, cameras=tuple(self.camera(name) for name in names))

    def state_based(self) -> SceneConfig:
        """This scene without cameras and with ``observation.environment_state``: what state-based
        policies (no images) are recorded, trained and evaluated in."""
        return replace(self, cameras=(), environment_state=True)

    def with_image_size(self, height: int, width: int) -> SceneConfig:
        return replace(self, cameras=tuple(replace(c, height=height, width=width) for c in self.cameras))

    # ---- serialisation -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["perturbations"] = [arm.to_dict() for arm in self.perturbations]
        return json.loads(json.dumps(data))  # tuples -> lists, so the dict equals its json round trip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SceneConfig:
        if not isinstance(data, Mapping):
            raise SceneConfigError(f"scene config must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SceneConfigError(
                f"unknown scene config fields {unknown}: was scene.json written by a newer so101lab? "
                "upgrade, or remove those fields"
            )
        version = data.get("format_version", SCENE_CONFIG_FORMAT_VERSION)
        if version != SCENE_CONFIG_FORMAT_VERSION:
            raise SceneConfigError(
                f"scene config format_version {version} is not {SCENE_CONFIG_FORMAT_VERSION}: "
                "re-record the dataset or convert its scene.json"
            )
        kwargs: dict[str, Any] = {}
        for name, value in data.items():
            if name == "cameras":
                camera_fields = {f.name for f in fields(CameraConfig)}
                cameras = []
                for camera in value:
                    extra = sorted(set(camera) - camera_fields)
                    if extra:
                        raise SceneConfigError(f"unknown camera fields {extra} in scene config: remove them")
                    missing = [name for name in ("name", "position", "quat") if name not in camera]
                    if missing:
                        raise SceneConfigError(
                            f"camera {camera.get('name', '?')!r} in the scene config lacks {missing}: record "
                            "the scene with libs/datasets:record, or copy a complete scene.json"
                        )
                    cameras.append(
                        CameraConfig(
                            **{
                                **camera,
                                "position": tuple(camera["position"]),
                                "quat": tuple(camera["quat"]),
                            }
                        )
                    )
                kwargs[name] = tuple(cameras)
            elif name == "perturbations":
                kwargs[name] = tuple(value)  # each checked by Perturbation.from_dict in __post_init__
            elif isinstance(value, list):
                kwargs[name] = _to_tuple(value)
            else:
                kwargs[name] = value
        try:
            return cls(**kwargs)
        except TypeError as error:
            raise SceneConfigError(f"malformed scene config ({error}): rewrite scene.json") from error

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> SceneConfig:
        path = Path(path)
        if not path.is_file():
            raise SceneConfigError(f"scene config {path} does not exist: pass the scene.json of a dataset")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise SceneConfigError(f"scene config {path} is not valid JSON ({error}): rewrite it") from error
        return cls.from_dict(data)

    # ---- comparison --------------------------------------------------------------------------------
    def differences(self, other: SceneConfig | Mapping[str, Any]) -> list[str]:
        """Human-readable differences from ``other`` (e.g. the training scene); empty when equivalent.

        Each line names the field and both values, e.g. ``camera 'overhead' fovy_deg: 58.0 vs 52.0``.
        """
        if not isinstance(other, SceneConfig):
            other = SceneConfig.from_dict(other)
        lines: list[str] = []
        mine = {camera.name: camera for camera in self.cameras}
        theirs = {camera.name: camera for camera in other.cameras}
        for name in mine.keys() - theirs.keys():
            lines.append(f"camera {name!r}: only in this scene (other has {sorted(theirs)})")
        for name in theirs.keys() - mine.keys():
            lines.append(f"camera {name!r}: missing here (this scene has {sorted(mine)})")
        for name in [n for n in mine if n in theirs]:
            for f in fields(CameraConfig):
                a, b = getattr(mine[name], f.name), getattr(theirs[name], f.name)
                if not _same(a, b):
                    lines.append(f"camera {name!r} {f.name}: {_show(a)} vs {_show(b)}")
        if list(mine) != list(theirs) and set(mine) == set(theirs):
            lines.append(f"camera order: {list(mine)} vs {list(theirs)}")
        for f in fields(SceneConfig):
            if f.name == "cameras":
                continue
            a, b = getattr(self, f.name), getattr(other, f.name)
            if not _same(a, b):
                lines.append(f"{f.name}: {_show(a)} vs {_show(b)}")
        return lines


def _to_tuple(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_to_tuple(v) for v in value)
    return value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, bool) or isinstance(b, bool):
            return a == b
        return abs(float(a) - float(b)) <= _FLOAT_TOLERANCE
    return a == b


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "(" + ", ".join(_show(v) for v in value) + ")"
    return repr(value)
