"""Named perturbation arms: what differs from the control scene when a checkpoint is tested for robustness.

A scene config declares its arms (``SceneConfig.perturbations``), so they are saved with every result and
replay exactly; the sweep's ``--perturbations`` runs each arm on the same seeds as the unperturbed control
and reports the paired difference. Each ``Perturbation`` changes one or more of:

- the cameras: every world-fixed camera moved by up to ± ``camera_position_jitter_m`` on each axis and every
  camera's field of view changed by up to ± ``camera_fovy_jitter_deg``, drawn afresh each episode from its
  seed;
- the lighting: every light (and the headlight) scaled by ``light_scale``;
- the block: size, mass and friction scaled, colour replaced;
- the loop: observations ``observation_latency_steps`` control steps old; each new action taken only every
  ``action_hold_steps + 1`` steps (the last one repeated in between); Gaussian noise of ``action_noise_deg``
  degrees on the arm joints of every action (joint actions), drawn from the episode's seed.

``PerturbedLoop`` is what the env calls: at build (scene and model changes), at reset and at each step.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import mujoco
import numpy as np

from libs.errors import LabError

#: Mixed into an episode's seed so a perturbation's draws never coincide with the layout's.
_PERTURBATION_STREAM = 0x9E3779B1


class PerturbationError(LabError, ValueError):
    """A perturbation is declared wrongly; the message names the fix."""


@dataclass(frozen=True)
class Perturbation:
    """One named arm (see the module docstring); every field at its default changes nothing."""

    name: str
    camera_position_jitter_m: float = 0.0
    camera_fovy_jitter_deg: float = 0.0
    light_scale: float = 1.0
    block_size_scale: float = 1.0
    block_mass_scale: float = 1.0
    block_friction_scale: float = 1.0
    block_rgba: tuple[float, float, float, float] | None = None
    observation_latency_steps: int = 0
    action_hold_steps: int = 0
    action_noise_deg: float = 0.0

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise PerturbationError(
                f"perturbation name {self.name!r} must be letters, digits, '_' or '-' (it names result rows)"
            )
        for name in ("camera_position_jitter_m", "camera_fovy_jitter_deg", "action_noise_deg"):
            if getattr(self, name) < 0:
                raise PerturbationError(f"perturbation {self.name!r}: {name} must be >= 0")
        for name in ("light_scale", "block_size_scale", "block_mass_scale", "block_friction_scale"):
            if not getattr(self, name) > 0:
                raise PerturbationError(f"perturbation {self.name!r}: {name} must be > 0")
        for name in ("observation_latency_steps", "action_hold_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise PerturbationError(f"perturbation {self.name!r}: {name} must be a whole number >= 0")
        if self.block_rgba is not None:
            rgba = tuple(float(v) for v in self.block_rgba)
            if len(rgba) != 4 or not all(0.0 <= v <= 1.0 for v in rgba):
                raise PerturbationError(f"perturbation {self.name!r}: block_rgba needs 4 numbers in [0, 1]")
            object.__setattr__(self, "block_rgba", rgba)

    def to_dict(self) -> dict[str, Any]:
        """Only the fields that differ from the control, so a scene.json stays readable."""
        defaults = Perturbation(self.name)
        data = asdict(self)
        return {key: value for key, value in data.items() if key == "name" or value != getattr(defaults, key)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Perturbation:
        if not isinstance(data, Mapping) or "name" not in data:
            raise PerturbationError(f"a perturbation must be an object with a 'name', got {data!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise PerturbationError(
                f"perturbation {data.get('name')!r} has unknown fields {unknown}: known are {sorted(known)}"
            )
        values = dict(data)
        if values.get("block_rgba") is not None:
            values["block_rgba"] = tuple(values["block_rgba"])
        return cls(**values)

    def scene(self, scene: Any) -> Any:
        """The control scene with this arm's block changes (size, mass, colour) applied."""
        changes: dict[str, Any] = {}
        if self.block_size_scale != 1.0:
            changes["block_size_m"] = scene.block_size_m * self.block_size_scale
        if self.block_mass_scale != 1.0:
            changes["block_mass_kg"] = scene.block_mass_kg * self.block_mass_scale
        if self.block_rgba is not None:
            changes["block_rgba"] = self.block_rgba
        return replace(scene, **changes) if changes else scene


class PerturbedLoop:
    """Applies a ``Perturbation`` to one env's model, resets and steps (``None`` = the control: no-ops)."""

    def __init__(self, perturbation: Perturbation | None, model: mujoco.MjModel, block_body: str) -> None:
        self.perturbation = perturbation
        self._model = model
        self._base_cam_pos = model.cam_pos.copy()
        self._base_cam_fovy = model.cam_fovy.copy()
        self._world_cameras = np.flatnonzero(model.cam_bodyid == 0)
        self._rng = np.random.default_rng(0)
        self._observations: deque[dict[str, Any]] = deque()
        self._held: np.ndarray | None = None
        self._steps = 0
        if perturbation is None:
            return
        if perturbation.light_scale != 1.0:
            model.light_diffuse[:] *= perturbation.light_scale
            model.light_ambient[:] *= perturbation.light_scale
            model.vis.headlight.diffuse[:] = (
                np.asarray(model.vis.headlight.diffuse) * perturbation.light_scale
            )
            model.vis.headlight.ambient[:] = (
                np.asarray(model.vis.headlight.ambient) * perturbation.light_scale
            )
        if perturbation.block_friction_scale != 1.0:
            block = model.body(block_body).id
            geoms = np.flatnonzero(model.geom_bodyid == block)
            model.geom_friction[geoms] *= perturbation.block_friction_scale

    @property
    def active(self) -> bool:
        return self.perturbation is not None

    def on_reset(self, seed: int) -> None:
        """Draw this episode's camera jitter and noise stream from its seed; clear the loop's memory."""
        self._observations.clear()
        self._held = None
        self._steps = 0
        if self.perturbation is None:
            return
        self._rng = np.random.default_rng([int(seed), _PERTURBATION_STREAM])
        jitter = self.perturbation.camera_position_jitter_m
        model = self._model
        model.cam_pos[:] = self._base_cam_pos
        model.cam_fovy[:] = self._base_cam_fovy
        if jitter > 0 and self._world_cameras.size:
            offsets = self._rng.uniform(-jitter, jitter, size=(self._world_cameras.size, 3))
            model.cam_pos[self._world_cameras] = self._base_cam_pos[self._world_cameras] + offsets
        fov = self.perturbation.camera_fovy_jitter_deg
        if fov > 0:
            model.cam_fovy[:] = np.clip(
                self._base_cam_fovy + self._rng.uniform(-fov, fov, size=model.ncam), 1.0, 179.0
            )

    def action(self, action: np.ndarray, action_space: str) -> np.ndarray:
        """The action the robot really executes this step."""
        if self.perturbation is None:
            return action
        array = np.array(action, dtype=np.float32, copy=True)
        if self.perturbation.action_noise_deg > 0 and action_space == "joint":
            array[:5] += self._rng.normal(0.0, self.perturbation.action_noise_deg, size=5).astype(np.float32)
        hold = self.perturbation.action_hold_steps
        if hold > 0:
            if self._held is None or self._steps % (hold + 1) == 0:
                self._held = array
            array = self._held
        self._steps += 1
        return array

    def observation(self, observation: dict[str, Any]) -> dict[str, Any]:
        """The observation the policy sees: ``observation_latency_steps`` control steps old."""
        if self.perturbation is None or self.perturbation.observation_latency_steps == 0:
            return observation
        self._observations.append(observation)
        while len(self._observations) > self.perturbation.observation_latency_steps + 1:
            self._observations.popleft()
        return self._observations[0]
