"""One sweep worker's episodes: the env and policy it keeps, the checks before the first episode.

An ``EpisodeWorker`` runs in each Ray actor (``libs.evaluation.play.ray_pool``) or, for ``--serial`` and
whiskers, in the driver. It keeps one env per (action space, cameras, scene, perturbation) and the policy
of the checkpoint it is working on, loaded once per checkpoint; each target carries its card and the scene
planning decided for it (``libs.evaluation.plan.checkpoints``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from libs.evaluation.plan.checkpoints import CheckpointTarget, EvaluationScene
from libs.evaluation.plan.tasks import EnvSettings, EpisodeTask
from libs.evaluation.plan.training_scene import check_training_scene
from libs.evaluation.play.evaluated_episode import EpisodeResult, evaluate_episode, evaluate_lockstep
from libs.evaluation.play.input_check import InputCheck, check_inputs
from libs.evaluation.results.episode_record import EpisodeRecord
from libs.policy_api.card import CheckpointCard
from libs.policy_api.contracts import ContractViolation, EpisodeGuardedPolicy, check_scene_matches
from libs.policy_api.registry import PolicyLoadError, make_policy
from libs.policy_api.types import PolicySpec
from libs.sim.play.lockstep import supports_batches
from libs.sim.play.observers import EpisodeObserver

if TYPE_CHECKING:
    from libs.sim.env import SO101PickPlaceEnv


def lockstep_batches(tasks: Sequence[EpisodeTask], size: int) -> list[list[EpisodeTask]]:
    """``tasks`` in order, cut into runs of at most ``size`` that share one checkpoint and perturbation
    (what one worker can play in lockstep)."""
    batches: list[list[EpisodeTask]] = []
    for task in tasks:
        last = batches[-1] if batches else None
        if (
            last is not None
            and len(last) < max(1, size)
            and last[0].target.policy_uri == task.target.policy_uri
            and last[0].arm == task.arm
        ):
            last.append(task)
        else:
            batches.append([task])
    return batches


@dataclass
class _Loaded:
    """A loaded policy with its target (card and decided scene) and its dataset's ``action`` stats."""

    policy: EpisodeGuardedPolicy
    target: CheckpointTarget
    action_stats: Any


class EpisodeWorker:
    """Runs episodes for one worker: caches one env per (action space, cameras, scene) and the current
    policy."""

    def __init__(self, env_settings: EnvSettings, keep_policies: int = 1) -> None:
        self.env_settings = env_settings
        self._current: _Loaded | None = None
        self._envs: dict[tuple[Any, ...], list[SO101PickPlaceEnv]] = {}
        self.policy_loads = 0
        #: checkpoint id -> what the input-drift check found when its policy was loaded (None: no stats).
        self.input_checks: dict[str, InputCheck | None] = {}
        #: Policies kept loaded besides the current one (a paired --until-decided sweep alternates two).
        self._keep_policies = max(1, keep_policies)
        self._parked: dict[str, _Loaded] = {}

    def run(self, task: EpisodeTask) -> EpisodeRecord:
        return self.play(task).record

    def run_batch(self, tasks: Sequence[EpisodeTask]) -> list[EpisodeRecord]:
        """``tasks`` (one ``lockstep_batches`` batch) in lockstep when the policy takes batches, else one
        after another; records in the given order."""
        if len(tasks) < 2:
            return [self.run(task) for task in tasks]
        target = tasks[0].target
        policy, action_stats, _ = self._prepare(target)
        if not supports_batches(policy):
            return [self.run(task) for task in tasks]
        assert self._current is not None
        envs = self._envs_for(policy.spec, self._current.target.scene, target.arm, len(tasks))
        step = self._current.target.step
        results = evaluate_lockstep(
            policy,
            envs,
            [task.start for task in tasks],
            action_stats=action_stats,
            labels=[task.label(step) for task in tasks],
        )
        return [result.record for result in results]

    def play(self, task: EpisodeTask, observers: Sequence[EpisodeObserver] = ()) -> EpisodeResult:
        """The episode of ``task``, with ``observers`` (whiskers) riding along."""
        policy, action_stats, env = self._prepare(task.target)
        assert self._current is not None
        return evaluate_episode(
            policy,
            env,
            task.start,
            action_stats=action_stats,
            label=task.label(self._current.target.step),
            observers=observers,
        )

    def prepared(self, target: CheckpointTarget) -> tuple[EpisodeGuardedPolicy, Any, SO101PickPlaceEnv]:
        """(policy, its dataset's ``action`` stats or None, env) for ``target``, loading it if needed."""
        return self._prepare(target)

    def _prepare(self, target: CheckpointTarget) -> tuple[EpisodeGuardedPolicy, Any, SO101PickPlaceEnv]:
        current = self._current
        if current is None or current.target.policy_uri != target.policy_uri:
            if current is not None and self._keep_policies > 1:
                self._parked[current.target.policy_uri] = current
                while len(self._parked) >= self._keep_policies:
                    self._parked.pop(next(iter(self._parked)))
            self._current = None  # free the previous checkpoint before loading the next
            current = self._parked.pop(target.policy_uri, None) or self._load(target)
            self._current = current
        env = self._env_for(current.policy.spec, current.target.scene, target.arm)
        return current.policy, current.action_stats, env

    def _load(self, target: CheckpointTarget) -> _Loaded:
        try:
            policy = EpisodeGuardedPolicy(make_policy(target.policy_uri))
        except PolicyLoadError:
            raise
        except Exception as error:
            # A checkpoint deleted or moved while its files are read fails deep in the loader (orbax, torch):
            # say what happened, not the loader's traceback.
            if target.path is not None and not target.path.exists():
                raise PolicyLoadError(
                    f"checkpoint {target.path} went away while it was being loaded "
                    f"({type(error).__name__}): put it back, or leave it out, and run the same command; the "
                    f"episodes already stored are kept"
                ) from error
            raise
        self.policy_loads += 1
        env = self._env_for(policy.spec, target.scene, target.arm)
        if self.env_settings.check_scene:
            check_against_training(env.scene, target, [camera.name for camera in policy.spec.cameras])
        self.input_checks[target.checkpoint_id] = self._check_inputs(policy, target)
        action_stats = target.card.action_stats if target.card is not None else None
        return _Loaded(policy, target, action_stats)

    def _check_inputs(self, policy: EpisodeGuardedPolicy, target: CheckpointTarget) -> InputCheck | None:
        """The env's first observations (and the policy's first actions) against the checkpoint's training
        statistics, before its first scored episode (``libs.evaluation.play.input_check``): drift refuses
        unless --allow-input-drift, or --no-scene-check makes it expected."""
        settings, spec = self.env_settings, policy.spec
        unlimited = replace(settings, max_steps=None)  # the reference episodes last as training's did
        cameras = tuple(dict.fromkeys(camera.name for camera in spec.cameras))

        # The control's env, also when the worker's first task is an arm: a policy is loaded once for its
        # checkpoint and arms (their drift is expected: the report's section names it).
        def reference_env() -> SO101PickPlaceEnv:
            return make_env(unlimited, spec.action_space, cameras, target.scene)

        key = json.dumps([spec.action_space, cameras, target.scene.config], sort_keys=True)
        return check_inputs(
            policy,
            target.card,
            reference_env,
            checkpoint_id=target.checkpoint_id,
            expected=None if settings.check_scene else "--no-scene-check",
            allow=settings.allow_input_drift,
            cache_key=key,
        )

    def _env_for(self, spec: PolicySpec, scene: EvaluationScene, arm: str = "") -> SO101PickPlaceEnv:
        return self._envs_for(spec, scene, arm, 1)[0]

    def _envs_for(
        self, spec: PolicySpec, scene: EvaluationScene, arm: str, count: int
    ) -> list[SO101PickPlaceEnv]:
        """``count`` envs for this policy, scene and perturbation arm (the first is the one-at-a-time env)."""
        camera_names = tuple(dict.fromkeys(camera.name for camera in spec.cameras))
        scene_key = json.dumps(scene.config, sort_keys=True)
        key = (spec.action_space, camera_names, scene_key, arm)
        if key not in self._envs:
            self._envs.clear()  # one kind of env at a time: renderers hold GL contexts and memory
            self._envs[key] = []
        envs = self._envs[key]
        while len(envs) < count:
            envs.append(make_env(self.env_settings, spec.action_space, camera_names, scene, arm))
        return envs[:count]


def check_against_training(env_scene: Any, target: CheckpointTarget, camera_names: Sequence[str]) -> None:
    """The scene ``target`` is evaluated in against its card's training scene: evaluated in its carried
    scene, that scene must be its training dataset's; with --scene, the cameras it reads must match."""
    from libs.sim.scene_config import SceneConfig

    card: CheckpointCard | None = target.card
    if card is None or card.scene is None:
        return
    if target.scene.is_training_scene:
        check_training_scene(target.path, card.scene, card.dataset)
    check_scene_matches(env_scene, card.scene, SceneConfig.from_dict, camera_names)


def make_env(
    settings: EnvSettings,
    action_space: str,
    camera_names: Sequence[str],
    scene: EvaluationScene,
    arm: str = "",
) -> SO101PickPlaceEnv:
    """The env for a policy in ``scene`` (a checkpoint's decided scene) under perturbation ``arm`` ("": the
    control), rendering only the cameras the policy reads. A camera the scene lacks is one line naming the
    scene's cameras.
    """
    from libs.sim.env import SO101PickPlaceEnv

    config = scene.load()
    missing = [name for name in camera_names if name not in config.camera_names]
    if missing:
        raise ContractViolation(
            f"the policy reads camera(s) {', '.join(missing)} but {scene.source} has "
            f"{', '.join(config.camera_names) or 'no cameras'}: evaluate in the scene the checkpoint was "
            "trained in, or give --scene a scene with those cameras"
        )
    config = config.with_cameras([name for name in camera_names if name in config.camera_names])
    kwargs: dict[str, Any] = {"scene": config, "action_space": action_space, "perturbation": arm or None}
    if settings.max_steps is not None:
        kwargs["max_steps"] = settings.max_steps
    if settings.task is not None:
        kwargs["task"] = settings.task
    return SO101PickPlaceEnv(**kwargs)
