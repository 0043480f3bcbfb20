"""Contract checks between a policy and the env, each failing with one line that names the fix.

These catch the evaluation bugs that silently score 0%: camera keys that do not match the
policy's inputs, depth and RGB confused by a naming rule, a missing ``reset()`` between episodes, actions that
were never de-normalised, tiny image stds that blow normalised pixels up to ±300, and a scene whose cameras
differ from the training scene. The harness runs them before an episode (scene, metadata) and during it
(every observation and every predicted chunk).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from libs.errors import LabError
from libs.policy_api.card import CheckpointCard, card_of
from libs.policy_api.lazy_observation import array_signature
from libs.policy_api.types import (
    DEPTH_SUFFIX,
    ENVIRONMENT_STATE_KEY,
    IMAGE_KEY_PREFIX,
    STATE_KEY,
    ActionChunk,
    NeedsEnv,
    Observation,
    PolicySpec,
    ReportsNormalizedInputs,
)

#: ``libs.sim.layout.EE_TAIL_DISTANCE_M`` (policy_api sits below sim and cannot import it; a sim test keeps
#: the two equal).
EE_TAIL_DISTANCE_M = 0.1

#: An ee action's tail this many times nearer or farther than EE_TAIL_DISTANCE_M is another layout or unit.
EE_TAIL_FACTOR = 5.0
#: Normalised inputs beyond this magnitude mean the stats used to normalise them are broken (std ≈ 0).
NORMALIZED_INPUT_LIMIT = 20.0
#: A chunk whose values all sit within ±this looks like it is still in normalised units.
NORMALIZED_ACTION_BOUND = 5.0
#: Slack beyond the joint limits before an action counts as out of range: this many env units plus this
#: fraction of the joint's range. Generous on purpose: an undertrained policy overshooting a limit
#: (gripper -15 on 0–100; the env clips it) is behaviour, not a bug; wrong stats or units land far
#: outside (e.g. -2455).
JOINT_LIMIT_TOLERANCE = 5.0
JOINT_LIMIT_RANGE_FRACTION = 0.25


class ContractViolation(LabError, RuntimeError):
    """A policy and the env disagree; the message is one line naming the problem and the fix."""


class UnsafeActionViolation(ContractViolation):
    """One chunk was non-finite or far outside the joint limits. Raised per episode: the harness records the
    episode as a ``contract_violation`` and goes on, since one checkpoint's bad outputs say nothing about the
    next checkpoint's (a setup error, by contrast, stops the sweep)."""


# --------------------------------------------------------------------------- observations vs spec


def check_observation(observation: Observation, spec: PolicySpec) -> None:
    """The env provides every key the policy needs, with the declared image size and modality."""
    provided_images = sorted(key for key in observation if key.startswith(IMAGE_KEY_PREFIX))
    if STATE_KEY not in observation:
        raise ContractViolation(f"observation has no {STATE_KEY!r}: the env must provide the joint state")
    state = np.asarray(observation[STATE_KEY])
    if state.shape != (spec.state_dim,):
        raise ContractViolation(
            f"{STATE_KEY} has shape {state.shape} but the policy spec expects ({spec.state_dim},): "
            "fix the policy's state_dim or the env's state layout"
        )
    check_environment_state(observation, spec)
    for camera in spec.cameras:
        key = camera.key
        if camera.name.endswith(DEPTH_SUFFIX):
            base = camera.name[: -len(DEPTH_SUFFIX)]
            raise ContractViolation(
                f"policy camera {camera.name!r} carries the {DEPTH_SUFFIX!r} suffix in its name: declare "
                f"CameraInput(name={base!r}, modality='depth') instead (the key gets the suffix once)"
            )
        if key not in observation:
            raise ContractViolation(_missing_camera_message(key, camera.modality, provided_images))
        # Shape and dtype only: an image drawn on demand stays undrawn until the policy reads it.
        shape, dtype = array_signature(observation, key)
        if camera.modality == "depth":
            expected_shape: tuple[int, ...] = (camera.height, camera.width)
            if len(shape) == 3 and shape[-1] == 3:
                raise ContractViolation(
                    f"{key} is declared depth but holds a 3-channel image: the env fed RGB where depth was "
                    "expected; declare the camera's modality in the scene config, not via its key's spelling"
                )
            if not np.issubdtype(dtype, np.floating):
                raise ContractViolation(
                    f"{key} is declared depth (float metres) but has dtype {dtype}: provide depth "
                    "in metres as float32"
                )
        else:
            expected_shape = (camera.height, camera.width, 3)
            if len(shape) == 2 or np.issubdtype(dtype, np.floating):
                raise ContractViolation(
                    f"{key} is declared RGB (uint8 H×W×3) but has shape {shape} dtype {dtype}: "
                    "depth was fed as RGB; check the camera's declared modality"
                )
        if shape != expected_shape:
            raise ContractViolation(
                f"{key} is {_size(shape)} but the policy was trained on "
                f"{camera.height}×{camera.width}: "
                "set the scene camera's width/height to the training size (or evaluate in the training scene "
                "its card.json carries: leave out --scene)"
            )


def check_environment_state(observation: Observation, spec: PolicySpec) -> None:
    """A policy trained on ``observation.environment_state`` gets it, of its length. (The reverse, a
    checkpoint trained without it in a scene that emits it, is ``check_scene_matches``'s: the privileged
    scripted expert reads the simulator and declares no inputs.)"""
    if not spec.environment_state_dim:
        return
    if ENVIRONMENT_STATE_KEY not in observation:
        raise ContractViolation(
            f"the policy was trained with {ENVIRONMENT_STATE_KEY} but the scene does not emit it: "
            "evaluate in its training scene (scene.json with environment_state: true)"
        )
    shape = np.asarray(observation[ENVIRONMENT_STATE_KEY]).shape
    if shape != (spec.environment_state_dim,):
        raise ContractViolation(
            f"{ENVIRONMENT_STATE_KEY} has shape {shape} but the policy was trained on "
            f"({spec.environment_state_dim},): re-record its dataset with this bench's layout"
        )


def _missing_camera_message(key: str, modality: str, provided: Sequence[str]) -> str:
    name = key[len(IMAGE_KEY_PREFIX) :]
    hint = "make the scene provide this camera or fix the camera names in the policy config"
    if modality == "depth" and f"{IMAGE_KEY_PREFIX}{name[: -len(DEPTH_SUFFIX)]}" in provided:
        hint = (
            "the camera exists but emits RGB only: declare modality 'depth' for it in the scene config "
            "(depth is never inferred from a key's spelling)"
        )
    elif modality == "rgb" and f"{key}{DEPTH_SUFFIX}" in provided:
        hint = "only its depth is provided: declare the RGB camera too"
    elif modality == "rgb" and name.endswith(DEPTH_SUFFIX):
        hint = f"the policy treats a depth key as RGB: declare camera {name[: -len(DEPTH_SUFFIX)]!r} as depth"
    return f"observation has no {key!r} (env provides {', '.join(provided) or 'no images'}): {hint}"


def _size(shape: tuple[int, ...]) -> str:
    return "×".join(str(dim) for dim in shape)


# --------------------------------------------------------------------------- actions


def check_action_chunk(
    chunk: ActionChunk,
    spec: PolicySpec,
    joint_low: Sequence[float] | np.ndarray | None = None,
    joint_high: Sequence[float] | np.ndarray | None = None,
    tolerance: float = JOINT_LIMIT_TOLERANCE,
) -> np.ndarray:
    """A chunk is a finite (T ≥ n_action_steps, action_dim) array; the joint actions to be executed (the
    first ``n_action_steps``) sit inside the limits.

    Returns the chunk as float32. ``joint_low``/``joint_high`` are the env's limits in env units.
    """
    array = np.asarray(chunk)
    if array.ndim != 2 or array.shape[1] != spec.action_dim:
        raise ContractViolation(
            f"policy returned an action chunk of shape {array.shape}, expected (T, {spec.action_dim}): "
            "infer() must return a (chunk_length, action_dim) array (add the time axis for single actions)"
        )
    if array.shape[0] < spec.n_action_steps:
        raise ContractViolation(
            f"policy returned {array.shape[0]} actions but its spec executes n_action_steps="
            f"{spec.n_action_steps} per chunk: lower n_action_steps or return the full chunk"
        )
    if not np.all(np.isfinite(array)):
        bad_steps = sorted({int(step) for step in np.argwhere(~np.isfinite(array))[:, 0]})
        raise UnsafeActionViolation(
            f"policy returned non-finite actions (NaN/inf at chunk steps {bad_steps[:5]}): check the "
            "checkpoint weights and the normalisation stats (a zero std divides by zero)"
        )
    if spec.action_space == "joint" and joint_low is not None and joint_high is not None:
        joint_range = np.asarray(joint_high, dtype=np.float64) - np.asarray(joint_low, dtype=np.float64)
        slack = tolerance + JOINT_LIMIT_RANGE_FRACTION * joint_range
        low = np.asarray(joint_low, dtype=np.float64) - slack
        high = np.asarray(joint_high, dtype=np.float64) + slack
        # Only the steps the env will execute can be unsafe; a far-horizon step that is re-planned before it
        # runs is the whisker diagnostics' business ("actions out of range"), not a reason to stop.
        executed = array[: spec.n_action_steps]
        outside = (executed < low) | (executed > high)
        if np.any(outside):
            step, dim = (int(index) for index in np.argwhere(outside)[0])
            raise UnsafeActionViolation(
                f"joint action {dim} = {array[step, dim]:.1f} at chunk step {step} is outside the joint "
                "range "
                f"[{joint_low[dim]:.1f}, {joint_high[dim]:.1f}] (degrees, gripper 0–100): the policy's "
                "output units or de-normalisation stats do not match the env (wrong stats, radians, or a "
                "0–1 gripper)"
            )
    if spec.action_space == "ee":
        _check_ee_tails(array)
    return array.astype(np.float32, copy=False)


def _check_ee_tails(array: np.ndarray) -> None:
    """An ee chunk's tails lie about EE_TAIL_DISTANCE_M from their positions (within EE_TAIL_FACTOR)."""
    # [x, y, z, tail_x, tail_y, tail_z, gripper] (libs.sim.layout): the tail lies EE_TAIL_DISTANCE_M
    # (0.1 m) behind the position; a distance many times off means another layout or unit (an old unit
    # approach vector: ~1 m; millimetres: ~100). Within the factor it is behaviour, not a bug: the env
    # reads only the tail's direction, and an undertrained policy's tails lie 0.07..0.19 m from the
    # position (Pi0 after 1,000 steps on ee demonstrations).
    distances = np.linalg.norm(array[:, :3] - array[:, 3:6], axis=1)
    low, high = EE_TAIL_DISTANCE_M / EE_TAIL_FACTOR, EE_TAIL_DISTANCE_M * EE_TAIL_FACTOR
    if np.any((distances < low) | (distances > high)):
        raise ContractViolation(
            f"ee action tail points lie {distances.min():.3f}..{distances.max():.3f} m from the gripper "
            f"position, expected about {EE_TAIL_DISTANCE_M} m (within ×{EE_TAIL_FACTOR:g}): the ee "
            "layout is [x, y, z, tail_x, tail_y, tail_z, gripper] in metres; check the de-normalisation "
            "stats, or convert an old approach-vector dataset with `convert ee` and retrain"
        )


def chunk_looks_normalized(
    chunk: ActionChunk, action_stats: Mapping[str, Any] | None, bound: float = NORMALIZED_ACTION_BOUND
) -> bool:
    """True when every value sits in the normalised range (±bound) although the dataset's raw actions
    cannot plausibly all sit there (so the policy forgot to de-normalise).

    Raw actions are implausible inside ±bound when, for some dimension, the dataset's observed range excludes
    ±bound or its mean lies more than 3 std beyond it, or when most dimensions have a typical magnitude
    (√(mean² + std²)) beyond 4×bound.
    """
    if action_stats is None or "mean" not in action_stats or "std" not in action_stats:
        return False
    array = np.asarray(chunk, dtype=np.float64)
    if array.size == 0 or np.max(np.abs(array)) > bound:
        return False
    mean = np.asarray(action_stats["mean"], dtype=np.float64).reshape(-1)
    std = np.asarray(action_stats["std"], dtype=np.float64).reshape(-1)
    if mean.shape[0] != array.shape[-1] or std.shape[0] != array.shape[-1]:
        return False
    far_dims = (np.abs(mean) - bound) > 3.0 * std
    if "min" in action_stats and "max" in action_stats:
        low = np.asarray(action_stats["min"], dtype=np.float64).reshape(-1)
        high = np.asarray(action_stats["max"], dtype=np.float64).reshape(-1)
        if low.shape == mean.shape and high.shape == mean.shape:
            far_dims |= (low > bound) | (high < -bound)
    typical_magnitude = np.sqrt(mean**2 + std**2)
    return bool(np.any(far_dims) or np.median(typical_magnitude) > 4.0 * bound)


def check_denormalized(chunk: ActionChunk, action_stats: Mapping[str, Any] | None) -> None:
    if chunk_looks_normalized(chunk, action_stats):
        array = np.asarray(chunk)
        mean = np.round(np.asarray(action_stats["mean"], dtype=np.float64), 1).tolist()  # type: ignore[index]
        raise ContractViolation(
            f"action chunk values lie in [{array.min():.2f}, {array.max():.2f}] (the normalised range) while "
            f"the dataset's action means are {mean}: the policy's outputs were never de-normalised; load the "
            "checkpoint's post-processor / norm stats and apply them in infer()"
        )


def check_normalized_inputs(
    normalized_inputs: Mapping[str, np.ndarray], limit: float = NORMALIZED_INPUT_LIMIT
) -> None:
    """Normalised policy inputs of sane magnitude: beyond ±limit means a (near-)zero std in the stats."""
    for key, value in normalized_inputs.items():
        array = np.asarray(value)
        if array.size == 0 or not np.issubdtype(array.dtype, np.number):
            continue
        peak = float(np.max(np.abs(array)))
        if not np.isfinite(peak) or peak > limit:
            raise ContractViolation(_out_of_bounds_message(key, array, peak, limit))


def _out_of_bounds_message(key: str, array: np.ndarray, peak: float, limit: float) -> str:
    """Images: a tiny std. A vector names its dimension, and the other cause a vector has: the env feeds it in
    other units than training's (a 0–100 gripper to a policy trained on 0–1 reaches ±300)."""
    if key.startswith(IMAGE_KEY_PREFIX) or array.ndim == 0 or not np.isfinite(peak):
        return (
            f"normalised input {key!r} reaches ±{peak:.0f} (sane inputs stay within ±{limit:.0f}): its std "
            "in the dataset stats is tiny (e.g. 0.002) — recompute the stats with the dataset doctor (or use "
            "per-channel image stats) and retrain or re-export the checkpoint"
        )
    dimension = int(np.unravel_index(np.argmax(np.abs(array)), array.shape)[-1])
    return (
        f"normalised input {key!r} reaches ±{peak:.0f} at dimension {dimension} (sane inputs stay within "
        f"±{limit:.0f}): the env feeds that dimension in other units than training's (e.g. a 0–100 gripper "
        "where training had 0–1), or its std in the dataset stats is tiny (e.g. 0.002) — fix the env's "
        "units, or recompute the stats with the dataset doctor and retrain or re-export the checkpoint"
    )


# --------------------------------------------------------------------------- scene


def check_scene_matches(
    env_scene: Any,
    checkpoint_scene: Mapping[str, Any] | None,
    scene_from_dict: Callable[[Any], Any],
    camera_names: Sequence[str],
) -> None:
    """The cameras the policy consumes (pose, FOV, size, modality) equal the ones saved with the
    checkpoint's training dataset, and both scenes agree on emitting ``observation.environment_state``.

    ``scene_from_dict`` is ``SceneConfig.from_dict``, passed in so this module stays free of the simulator.
    Only camera differences for ``camera_names`` are fatal: block regions may differ on purpose (``--grid``).
    """
    if checkpoint_scene is None or env_scene is None:
        return
    saved = scene_from_dict(dict(checkpoint_scene))
    trained_with = bool(getattr(saved, "environment_state", False))
    if bool(getattr(env_scene, "environment_state", False)) != trained_with:
        raise ContractViolation(
            f"the checkpoint was trained {'with' if trained_with else 'without'} {ENVIRONMENT_STATE_KEY} but "
            f"the evaluation scene {'does not emit' if trained_with else 'emits'} it: evaluate in its "
            "training scene (leave out --scene: the sweep then uses the scene <checkpoint>/card.json carries)"
        )
    prefixes = tuple(f"camera {name!r}" for name in camera_names)
    differences = [line for line in env_scene.differences(saved) if line.startswith(prefixes)]
    if differences:
        shown = "; ".join(differences[:4]) + ("; …" if len(differences) > 4 else "")
        raise ContractViolation(
            f"the evaluation scene's cameras differ from the checkpoint's training scene (this vs training: "
            f"{shown}): evaluate in its training scene (leave out --scene: the sweep then uses the scene "
            "<checkpoint>/card.json carries) or retrain in this scene"
        )


# --------------------------------------------------------------------------- reset


class EpisodeGuardedPolicy:
    """Wraps a policy so ``reset()`` runs at the start of every episode, exactly once, before any inference.

    A stale action queue (ACT/Diffusion keep one) would otherwise leak the last episode's plan into the next.
    ``infer`` outside an episode is a harness bug and raises.
    """

    def __init__(self, policy: Any) -> None:
        if isinstance(policy, EpisodeGuardedPolicy):
            policy = policy.inner
        if not callable(getattr(policy, "reset", None)):
            raise ContractViolation(
                f"{type(policy).__name__} has no reset(): every policy must clear its per-episode state "
                "(action queue, observation history) in reset()"
            )
        self.inner = policy
        self._in_episode = False
        self.episodes_started = 0

    @property
    def spec(self) -> PolicySpec:
        return self.inner.spec

    def start_episode(self, env: Any | None = None) -> None:
        """Call after ``env.reset``: resets the policy, then hands it the env if it reads simulator state."""
        self.inner.reset()
        if env is not None and isinstance(self.inner, NeedsEnv):
            self.inner.attach_env(env)
        self._in_episode = True
        self.episodes_started += 1

    def end_episode(self) -> None:
        self._in_episode = False

    def reset(self) -> None:
        self.inner.reset()

    def infer(self, observation: Observation) -> ActionChunk:
        if not self._in_episode:
            raise ContractViolation(
                "infer() called outside an episode: call start_episode() (which runs policy.reset()) after "
                "every env.reset so a stale action queue cannot leak across episodes"
            )
        return self.inner.infer(observation)

    def last_normalized_inputs(self) -> Mapping[str, np.ndarray] | None:
        if isinstance(self.inner, ReportsNormalizedInputs):
            return self.inner.last_normalized_inputs()
        return None

    @property
    def card(self) -> CheckpointCard | None:
        """The wrapped policy's checkpoint card (``HasCard``), or None."""
        return card_of(self.inner)
