"""The input-drift check a worker runs before a checkpoint's first scored episode.

The env's first observations are gathered from a reference set: the scripted expert plays a few fixed
seeds in an env built like the evaluation's (same scene, cameras, action space and perturbation), for as
many steps as the training episodes lasted on average, so the sample covers what the training data covered.
The evaluated policy then answers the reference episodes' first observations (its first predicted actions).
``libs.evaluation.plan.input_drift`` compares the sample with the card's training statistics; a difference
is refused (``InputDriftError``, one line naming the cause and the fix) unless ``--allow-input-drift`` is
given, or the checkpoint runs a perturbation arm, whose scene differs on purpose (expected drift).
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from libs.evaluation.plan.checkpoints import target_name
from libs.evaluation.plan.input_drift import (
    ACTION_KEY,
    ENVIRONMENT_STATE_KEY,
    Drift,
    ObservedInputs,
    drift_error,
    find_drift,
)
from libs.policy_api.card import DATASET_INFO_FILE, DATASET_META_DIR, CheckpointCard
from libs.policy_api.contracts import EpisodeGuardedPolicy
from libs.policy_api.types import (
    DEPTH_SUFFIX,
    IMAGE_KEY_PREFIX,
    STATE_KEY,
    CameraInput,
    Observation,
    PolicySpec,
)
from libs.sim.play.episode import EpisodeStart, play_episode
from libs.sim.play.observers import EpisodeObserver

LOG = logging.getLogger(__name__)
#: The reference episodes' seeds: fixed, so every worker and rerun checks the same sample.
REFERENCE_SEEDS = (1_000_003, 1_000_033)
ALLOW_FLAG = "--allow-input-drift"
#: The report section's key (report.json; the report places it at its top) and title.
INPUT_DRIFT_SECTION = "input_drift"
INPUT_DRIFT_TITLE = "Inputs vs training"
#: Reference steps per episode when the training episodes' length is unknown (the env's default limit).
DEFAULT_STEPS = 300


@dataclass(frozen=True)
class InputCheck:
    """What the check found for one checkpoint (or arm): the drifts, and why they were expected (a
    perturbation arm, --no-scene-check), None when they were not (refused, or --allow-input-drift)."""

    checkpoint_id: str
    drifts: tuple[Drift, ...]
    expected: str | None = None
    #: The perturbation arm checked ("" for the checkpoint's control env).
    arm: str = ""

    @property
    def name(self) -> str:
        """How the report names what was checked: the checkpoint, and its arm if any."""
        return target_name(self.checkpoint_id, self.arm)

    def to_dict(self) -> dict[str, Any]:
        return {
            "checkpoint_id": self.checkpoint_id,
            "arm": self.arm,
            "expected": self.expected,
            "drifts": [drift.to_dict() for drift in self.drifts],
        }


class _Sampler(EpisodeObserver):
    """Keeps every step's state and action, and each inference's per-channel image means."""

    def __init__(self, spec: PolicySpec, steps: int, inputs: ObservedInputs) -> None:
        self.camera_keys = [camera.key for camera in spec.cameras if camera.modality == "rgb"]
        self.steps, self.inputs = steps, inputs
        self.states: list[np.ndarray] = []
        self.environment_states: list[np.ndarray] = []
        self.actions: list[np.ndarray] = []
        self.image_means: dict[str, list[np.ndarray]] = {key: [] for key in self.camera_keys}

    def before_inference(self, observation: Observation, spec: PolicySpec) -> None:
        if len(self.actions) >= self.steps:
            return
        for key in self.camera_keys:
            frame = np.asarray(observation[key], dtype=np.float64)
            self.image_means[key].append(frame.reshape(-1, frame.shape[-1]).mean(axis=0) / 255.0)

    def before_step(self, observation: Observation, action: np.ndarray) -> np.ndarray:
        if len(self.actions) < self.steps:
            self.states.append(np.asarray(observation[STATE_KEY], dtype=np.float64).ravel())
            self.actions.append(np.asarray(action, dtype=np.float64).ravel())
            if ENVIRONMENT_STATE_KEY in observation:  # the objects' poses, when the scene emits them
                state = observation[ENVIRONMENT_STATE_KEY]
                self.environment_states.append(np.asarray(state, dtype=np.float64).ravel())
        return action

    def add_to(self, inputs: ObservedInputs) -> None:
        vectors = (
            (STATE_KEY, self.states),
            (ENVIRONMENT_STATE_KEY, self.environment_states),
            (ACTION_KEY, self.actions),
        )
        for key, values in vectors:
            if values:
                kept = inputs.vectors.get(key)
                stacked = np.stack(values)
                inputs.vectors[key] = stacked if kept is None else np.concatenate([kept, stacked])
        for key, means in self.image_means.items():
            if means:
                kept = inputs.image_means.get(key)
                stacked = np.stack(means)
                inputs.image_means[key] = stacked if kept is None else np.concatenate([kept, stacked])


@dataclass
class _EpisodeLimit(EpisodeObserver):
    """Stops a reference episode after ``steps`` steps (raising out of the loop, caught by the caller)."""

    steps: int
    taken: int = field(default=0)

    def on_step(self, event: Any) -> None:
        self.taken += 1
        if self.taken >= self.steps:
            raise _ReferenceDone


class _ReferenceDone(Exception):
    """A reference episode reached its step count."""


#: The environment state (block and bowl poses) changes with each episode's layout, and the reference
#: episodes' bowls are drawn afresh: its training statistics describe the layouts only from this many
#: training episodes on (a two-episode dataset has seen two bowls).
MIN_EPISODES_FOR_ENVIRONMENT_STATE = 20


def compared_stats(card: CheckpointCard) -> dict[str, Any]:
    """The training statistics the inputs are compared with (the environment state's only when they
    cover the layouts)."""
    stats = dict(card.stats or {})
    if len(card.block_positions or []) < MIN_EPISODES_FOR_ENVIRONMENT_STATE:
        stats.pop(ENVIRONMENT_STATE_KEY, None)
    return stats


def training_episode_steps(card: CheckpointCard) -> int | None:
    """How many frames the training episodes had on average (the dataset's info.json), or None."""
    info = _dataset_info(card)
    episodes, frames = info.get("total_episodes"), info.get("total_frames")
    if isinstance(episodes, int) and isinstance(frames, int) and episodes > 0:
        return max(1, round(frames / episodes))
    return None


def training_fps(card: CheckpointCard) -> float | None:
    """The training data's frame rate: the card's ``fps``, else its dataset's info.json."""
    fps = card.fps or _dataset_info(card).get("fps")
    return float(fps) if fps else None


def _dataset_info(card: CheckpointCard) -> dict[str, Any]:
    if not card.dataset:
        return {}
    try:
        return json.loads((Path(card.dataset) / DATASET_META_DIR / DATASET_INFO_FILE).read_text())
    except (OSError, ValueError):
        return {}


def reference_starts(card: CheckpointCard | None) -> list[EpisodeStart]:
    """The reference episodes: the first training episodes' block positions (the card's), so the expert
    moves as the training episodes did; fixed seeds where the card has none."""
    positions = (card.block_positions if card is not None else None) or []
    return [
        EpisodeStart(seed, (float(positions[i][0]), float(positions[i][1])) if i < len(positions) else None)
        for i, seed in enumerate(REFERENCE_SEEDS)
    ]


#: The expert's part of recent reference samples (it depends on the env only, not the checkpoint), so a
#: worker moving on to the next checkpoint of the same run does not play the reference episodes again.
_EXPERT_SAMPLES: dict[str, ObservedInputs] = {}
KEPT_SAMPLES = 4


def observe_inputs(
    make_reference_env: Callable[[], Any],
    spec: PolicySpec,
    steps: int,
    starts: Sequence[EpisodeStart],
    cache_key: str | None = None,
    policy: EpisodeGuardedPolicy | None = None,
) -> ObservedInputs:
    """The reference sample: the scripted expert's first ``steps`` steps of each start in a fresh env (with
    ``spec``'s cameras and action space), and ``policy``'s first chunk on each start's first observation.
    ``cache_key`` names the env (scene, perturbation, cameras, action space): the expert's part is kept."""
    where = [[start.seed, start.block_xy] for start in starts]
    key = None if cache_key is None else json.dumps([cache_key, steps, where])
    env = make_reference_env()
    try:
        kept = _EXPERT_SAMPLES.get(key) if key is not None else None
        expert = kept if kept is not None else _expert_sample(env, spec, steps, starts)
        if key is not None:
            _EXPERT_SAMPLES[key] = expert
            while len(_EXPERT_SAMPLES) > KEPT_SAMPLES:
                _EXPERT_SAMPLES.pop(next(iter(_EXPERT_SAMPLES)))
        predicted = _first_predictions(policy, env, starts) if policy is not None else None
    finally:
        env.close()
    return ObservedInputs(dict(expert.vectors), dict(expert.image_means), predicted, expert.control_hz)


def _expert_sample(env: Any, spec: PolicySpec, steps: int, starts: Sequence[EpisodeStart]) -> ObservedInputs:
    from libs.sim.scripted_policy import ScriptedPolicy

    inputs = ObservedInputs(control_hz=_env_control_hz())
    expert = ScriptedPolicy(action_space=spec.action_space, cameras=spec.cameras)
    for start in starts:
        sampler = _Sampler(spec, steps, inputs)
        try:
            play_episode(expert, env, start, [sampler, _EpisodeLimit(steps)])
        except _ReferenceDone:
            pass
        sampler.add_to(inputs)
    return inputs


def _env_control_hz() -> float:
    from libs.sim.layout import CONTROL_HZ

    return float(CONTROL_HZ)


def _first_predictions(policy: EpisodeGuardedPolicy, env: Any, starts: Sequence[EpisodeStart]) -> np.ndarray:
    """The evaluated policy's first chunk on each start's first observation (seeded as an episode is)."""
    chunks = []
    for start in starts:
        random.seed(start.seed)
        np.random.seed(start.seed % 2**32)
        options = {"block_xy": start.block_xy} if start.block_xy is not None else None
        observation, _ = env.reset(seed=start.seed, options=options)
        policy.start_episode(env)
        try:
            chunks.append(np.asarray(policy.infer(observation), dtype=np.float64))
        finally:
            policy.end_episode()
    return np.concatenate([chunk.reshape(-1, chunk.shape[-1]) for chunk in chunks])


def check_inputs(
    policy: EpisodeGuardedPolicy,
    card: CheckpointCard | None,
    make_reference_env: Callable[[], Any],
    *,
    checkpoint_id: str,
    expected: str | None = None,
    allow: bool = False,
    cache_key: str | None = None,
) -> InputCheck | None:
    """The input-drift check of one checkpoint (module docstring); None when its card has no statistics.
    Raises ``InputDriftError`` on drift unless ``allow``, or ``expected`` says why the env differs on
    purpose (then each drift is logged)."""
    if card is None or not card.stats:
        return None
    steps = reference_steps(card)
    observed = observe_inputs(
        make_reference_env, policy.spec, steps, reference_starts(card), cache_key, policy
    )
    drifts = tuple(find_drift(compared_stats(card), observed, training_fps(card)))
    check = InputCheck(checkpoint_id, drifts, expected)
    if drifts and not (allow or expected):
        raise drift_error(list(drifts), checkpoint_id, ALLOW_FLAG)
    for drift in drifts:
        LOG.warning(
            "%s: %s (%s)", checkpoint_id, drift.line, f"expected: {expected}" if expected else ALLOW_FLAG
        )
    return check


def reference_steps(card: CheckpointCard) -> int:
    """Steps of each reference episode: as long as the training episodes were on average (not the sweep's
    --max-steps: the sample must cover what training covered)."""
    return training_episode_steps(card) or DEFAULT_STEPS


def card_spec(card: CheckpointCard) -> PolicySpec:
    """The inputs a checkpoint reads, from its card alone (no policy loaded): its colour cameras and its
    action space."""
    cameras = tuple(
        CameraInput(feature.name.removeprefix(IMAGE_KEY_PREFIX), *feature.shape[:2])
        for feature in card.observation_features
        if feature.name.startswith(IMAGE_KEY_PREFIX)
        and not feature.name.endswith(DEPTH_SUFFIX)
        and len(feature.shape) == 3
    )
    action_space = card.action_space if card.action_space in ("joint", "ee") else "joint"
    return PolicySpec(
        cameras=cameras, action_dim=6 if action_space == "joint" else 7, action_space=action_space
    )


def target_drift(
    card: CheckpointCard | None,
    make_reference_env: Callable[[PolicySpec], Any],
    *,
    checkpoint_id: str,
    expected: str | None,
    cache_key: str | None = None,
) -> InputCheck | None:
    """What the report says of one target (a perturbation arm's expected drift, or what --allow-input-drift
    let through): the same comparison from the card alone, without the policy's predicted actions."""
    if card is None or not card.stats:
        return None
    spec = card_spec(card)
    observed = observe_inputs(
        lambda: make_reference_env(spec),
        spec,
        reference_steps(card),
        reference_starts(card),
        cache_key,
    )
    drifts = find_drift(compared_stats(card), observed, training_fps(card))
    return InputCheck(checkpoint_id, tuple(drifts), expected)


def input_drift_section(targets: Sequence[Any], settings: Any) -> tuple[str, dict[str, Any]] | None:
    """The report's input-drift section (its markdown and report.json data; the report places it at its
    top): what --allow-input-drift let through, and each perturbation arm's expected drift; None when
    neither applies (a sweep that ran without them had no drift)."""
    allowed = bool(getattr(settings, "allow_input_drift", False))
    checks = []
    for target in targets:
        expected = f"perturbation arm {target.arm}" if target.arm else None
        expected = expected or (None if settings.check_scene else "--no-scene-check")
        if target.card is None or (expected is None and not allowed):
            continue
        features = [feature.name for feature in target.card.observation_features]
        key = json.dumps([target.scene.config, target.arm, target.card.action_space, features])
        check = target_drift(
            target.card,
            partial(_target_env, target, settings.task),
            checkpoint_id=target.checkpoint_id,
            expected=expected,
            cache_key=key,
        )
        checks += [replace(check, arm=target.arm)] if check is not None else []
    return drift_section(checks, allowed)


def _target_env(target: Any, task: str | None, spec: PolicySpec) -> Any:
    """The env ``target`` (a sweep's checkpoint or arm) is evaluated in, for ``spec``'s cameras and action
    space, without the sweep's step limit (the reference episodes last as training's did)."""
    from libs.sim.env import SO101PickPlaceEnv

    config = target.scene.load()
    cameras = [camera.name for camera in spec.cameras if camera.name in config.camera_names]
    options = {"task": task} if task is not None else {}
    return SO101PickPlaceEnv(
        scene=config.with_cameras(cameras),
        action_space=spec.action_space,
        perturbation=target.arm or None,
        **options,
    )


def drift_section(checks: Sequence[InputCheck], allowed: bool) -> tuple[str, dict[str, Any]] | None:
    """The section's text: the allowed drifts first (the scores may reflect them), then the expected ones."""
    if not checks and not allowed:
        return None
    lines = []
    if allowed:
        lines.append(
            f"**Evaluated with `{ALLOW_FLAG}`**: checkpoints whose inputs differ from their training data "
            "were scored anyway; their scores may reflect the inputs, not the policy."
        )
        drifted = [(check, drift) for check in checks if not check.expected for drift in check.drifts]
        lines += [f"- `{check.name}`: {drift.line}" for check, drift in drifted]
        lines += [] if drifted else ["- no input drift was found"]
    expected = [check for check in checks if check.expected]
    if expected:
        lines.append("Expected input drift (the env differs from training on purpose):")
        for check in expected:
            found = "; ".join(drift.line for drift in check.drifts) or "inputs match training"
            lines.append(f"- `{check.name}` ({check.expected}): {found}")
    data = {"allowed": allowed, "checks": [check.to_dict() for check in checks]}
    return "\n".join(lines), data


def check_policy_inputs(
    policy: EpisodeGuardedPolicy, card: CheckpointCard | None, scene: Any, *, checkpoint_id: str
) -> InputCheck | None:
    """``check_inputs`` for a caller without a worker (rollouts): the reference env is built from the
    ``SceneConfig`` the policy will play in, with the cameras it reads."""
    from libs.sim.env import SO101PickPlaceEnv

    spec = policy.spec
    cameras = [camera.name for camera in spec.cameras if camera.name in scene.camera_names]

    def reference_env() -> Any:
        return SO101PickPlaceEnv(scene=scene.with_cameras(cameras), action_space=spec.action_space)

    return check_inputs(policy, card, reference_env, checkpoint_id=checkpoint_id)


def check_served_inputs(policy: Any, checkpoint_id: str, *, allow: bool = False) -> InputCheck | None:
    """``check_inputs`` for ``serve``: before serving, in the training scene the policy's card carries
    (nothing to check without a card with a scene and statistics)."""
    from libs.policy_api.card import card_of
    from libs.sim.scene_config import SceneConfig

    card = card_of(policy)
    if card is None or card.scene is None or not card.stats:
        return None
    guarded = EpisodeGuardedPolicy(policy)
    scene = SceneConfig.from_dict(card.scene)
    cameras = [camera.name for camera in guarded.spec.cameras if camera.name in scene.camera_names]

    def reference_env() -> Any:
        from libs.sim.env import SO101PickPlaceEnv

        return SO101PickPlaceEnv(scene=scene.with_cameras(cameras), action_space=guarded.spec.action_space)

    return check_inputs(guarded, card, reference_env, checkpoint_id=checkpoint_id, allow=allow)
