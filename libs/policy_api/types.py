"""The one policy interface every backend implements and the harness consumes.

Observation keys follow LeRobot's convention:
- ``observation.state``: float32[6], arm joints in degrees, gripper 0–100 (0 closed, 100 open).
- ``observation.images.<camera>``: uint8 H×W×3 RGB.
- ``observation.images.<camera>_depth``: float32 H×W in metres, present only for cameras whose modality is
  declared ``depth`` (never inferred from a key's spelling).
- ``observation.environment_state``: float32[``ENVIRONMENT_STATE_DIM``], privileged object state (block
  pose, bowl position; layout in ``libs.sim.layout``), present only when the scene asks for it.
- ``task``: the language prompt (str).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

STATE_KEY = "observation.state"
#: LeRobot's key for privileged object state (its ACT and Diffusion take it as an input token / condition).
ENVIRONMENT_STATE_KEY = "observation.environment_state"
IMAGE_KEY_PREFIX = "observation.images."
DEPTH_SUFFIX = "_depth"
TASK_KEY = "task"
ACTION_KEY = "action"

ActionSpace = Literal["joint", "ee"]
Modality = Literal["rgb", "depth"]

#: An observation as the env emits it and a policy consumes it (see module docstring for the keys).
Observation = Mapping[str, Any]
#: A chunk of actions, shape (T, action_dim), float32, in the env's own units (already de-normalised).
ActionChunk = np.ndarray


@dataclass(frozen=True)
class CameraInput:
    """One image input a policy consumes."""

    name: str
    height: int
    width: int
    modality: Modality = "rgb"

    @property
    def key(self) -> str:
        suffix = DEPTH_SUFFIX if self.modality == "depth" else ""
        return f"{IMAGE_KEY_PREFIX}{self.name}{suffix}"


@dataclass(frozen=True)
class PolicySpec:
    """What a policy needs from the env and what it returns."""

    cameras: tuple[CameraInput, ...]
    state_dim: int = 6
    #: Length of ``observation.environment_state`` the policy reads; 0 = it was trained without it.
    environment_state_dim: int = 0
    action_dim: int = 6
    action_space: ActionSpace = "joint"
    chunk_length: int = 1
    n_action_steps: int = 1
    control_hz: float = 30.0

    def __post_init__(self) -> None:
        if self.action_space not in ("joint", "ee"):
            raise ValueError(f"action_space must be 'joint' or 'ee', got {self.action_space!r}")
        if not 1 <= self.n_action_steps <= self.chunk_length:
            raise ValueError(
                f"n_action_steps={self.n_action_steps} must be between 1 and chunk_length={self.chunk_length}"
            )

    @property
    def observation_keys(self) -> tuple[str, ...]:
        environment = (ENVIRONMENT_STATE_KEY,) if self.environment_state_dim else ()
        return (STATE_KEY, *environment, *(camera.key for camera in self.cameras))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PolicySpec:
        cameras = tuple(CameraInput(**camera) for camera in data["cameras"])
        return cls(**{**data, "cameras": cameras})


@runtime_checkable
class Policy(Protocol):
    """Nothing else is required of a backend."""

    @property
    def spec(self) -> PolicySpec: ...

    def reset(self) -> None:
        """Clear any per-episode state (action queues, observation history).

        The harness seeds Python's and numpy's global RNGs with the episode seed just before this call; a
        policy that samples (diffusion, flow matching) seeds its own generator from numpy's global RNG
        here, so an episode's actions depend on its seed only, not on the episodes a worker ran before.
        """

    def infer(self, observation: Observation) -> ActionChunk:
        """Return a (chunk_length, action_dim) float32 chunk in env units."""


@runtime_checkable
class ReportsNormalizedInputs(Protocol):
    """Optional: a policy that normalises its inputs reports the last normalised tensors it saw,
    so the harness can catch the tiny-std stats bug (normalised pixels far beyond ±20)."""

    def last_normalized_inputs(self) -> Mapping[str, np.ndarray]: ...


@runtime_checkable
class NeedsEnv(Protocol):
    """Optional: privileged policies (the scripted expert) read simulator state.

    The episode runner calls ``attach_env`` after every ``env.reset``.
    """

    def attach_env(self, env: Any) -> None: ...


#: where a served observation carries the client's env state for a policy that ``AttachesEnvState``
ENV_STATE_KEY = "__so101lab_env_state__"


@runtime_checkable
class AttachesEnvState(Protocol):
    """Optional, for a ``NeedsEnv`` policy that can be served: it plans from a snapshot of the env's state
    (plain numbers) instead of the env itself. The client sends the snapshot after every reset
    (``attach_state``) and with every observation under ``ENV_STATE_KEY``."""

    def attach_state(self, state: Mapping[str, Any]) -> None: ...


@runtime_checkable
class SharesPrivilegedState(Protocol):
    """An env that gives the simulator state a ``NeedsEnv`` policy plans from as plain numbers (the bench's
    env), so a served expert can plan from a snapshot sent over the wire."""

    def privileged_state(self) -> dict[str, Any]: ...


@dataclass
class EpisodeState:
    """One client's episode inside a ``BatchPolicy``: what ``reset`` clears, kept apart from the weights.

    ``seed`` drives the episode's sampling noise; ``normalized_inputs`` are this episode's last normalised
    inputs (what ``ReportsNormalizedInputs`` reports). Backends subclass it with their queues and histories.
    """

    seed: int
    normalized_inputs: dict[str, np.ndarray] = field(default_factory=dict)


@runtime_checkable
class BatchPolicy(Protocol):
    """Optional: one forward pass for several clients, each with its own episode state.

    The policy server keeps one ``EpisodeState`` per connection, so policies with observation history or
    action queues never mix clients. ``reset()`` on the policy itself is ``new_episode`` on its own state.
    """

    def new_episode(self, seed: int) -> EpisodeState:
        """A fresh episode whose sampling depends on ``seed`` only."""

    def infer_batch(
        self, observations: Sequence[Observation], episodes: Sequence[EpisodeState]
    ) -> Sequence[ActionChunk]:
        """One chunk per observation, as ``infer`` would return it for that episode; advances each episode."""
