"""Plays the episodes one worker is given: one env and one loaded policy at a time, every contract check.

The same executor runs in a Ray actor (``libs.evaluation.ray_pool``), in the sweep's own process
(``--serial``), for the sweep's whisker replays and for the whiskers command, so every episode of the lab
goes through ``libs.evaluation.runner.run_episode`` with the scene decided for its checkpoint
(``libs.evaluation.checkpoints``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from libs.evaluation.checkpoints import CheckpointTarget
from libs.evaluation.records import EpisodeRecord
from libs.evaluation.runner import EpisodeResult, InferenceEvent, StepEvent, run_episode
from libs.policy_api.contracts import EpisodeGuardedPolicy, check_scene_matches
from libs.policy_api.registry import make_policy
from libs.sim.scene_config import SceneConfig


@dataclass(frozen=True)
class EnvSettings:
    """How each worker builds its env (the action space and cameras come from the policy's spec)."""

    #: ``--scene``: evaluate every checkpoint in this scene instead of its training scene.
    scene_path: str | None = None
    max_steps: int | None = None
    task: str | None = None
    check_scene: bool = True


@dataclass(frozen=True)
class EpisodeTask:
    target: CheckpointTarget
    seed: int
    block_xy: tuple[float, float] | None = None
    grid_cell: tuple[int, int] | None = None

    @property
    def key(self) -> tuple[str, int]:
        return (self.target.checkpoint_id, self.seed)


class EpisodeExecutor:
    """Runs episodes for one worker: caches one env per (action space, cameras, scene) and the policy."""

    def __init__(self, env_settings: EnvSettings) -> None:
        self.env_settings = env_settings
        self._target: CheckpointTarget | None = None
        self._policy: EpisodeGuardedPolicy | None = None
        self._env_key: tuple[Any, ...] | None = None
        self._env: Any = None
        self.policy_loads = 0

    def run(self, task: EpisodeTask) -> EpisodeRecord:
        return self.run_with_chunks(task, keep_chunks=False).record

    def run_with_chunks(
        self,
        task: EpisodeTask,
        on_inference: Callable[[InferenceEvent], None] | None = None,
        keep_chunks: bool = True,
        on_step: Callable[[StepEvent], None] | None = None,
    ) -> EpisodeResult:
        """The episode with every predicted chunk (and ``on_inference`` called with the live env at each
        inference), for whiskers and other per-chunk analyses."""
        policy, env = self.prepared(task.target)
        card = task.target.card
        return run_episode(
            policy,
            env,
            task.seed,
            checkpoint_id=task.target.checkpoint_id,
            step=task.target.step,
            action_stats=card.action_stats if card is not None else None,
            block_xy=task.block_xy,
            grid_cell=task.grid_cell,
            on_inference=on_inference,
            keep_chunks=keep_chunks,
            on_step=on_step,
        )

    def prepared(self, target: CheckpointTarget) -> tuple[EpisodeGuardedPolicy, Any]:
        """(policy, env) for ``target``, loading the policy when the checkpoint changes."""
        if target.scene is None:
            raise ValueError(
                f"checkpoint {target.checkpoint_id} has no decided scene: plan it with "
                "libs.evaluation.checkpoints.checkpoints_to_evaluate"
            )
        if self._policy is None or self._target is None or self._target.policy_uri != target.policy_uri:
            self._policy = None  # free the previous checkpoint before loading the next
            self._policy = EpisodeGuardedPolicy(make_policy(target.policy_uri))
            self.policy_loads += 1
            self._target = None
        env = self._env_for(self._policy, target.scene)
        if self._target is None:
            training_scene = target.card.scene if target.card is not None else None
            if self.env_settings.check_scene and training_scene is not None:
                # With --scene, the cameras the policy reads must match its training scene.
                check_scene_matches(env.scene, training_scene, SceneConfig.from_dict, self._camera_names())
            self._target = target
        return self._policy, env

    def _camera_names(self) -> list[str]:
        assert self._policy is not None
        return list(dict.fromkeys(camera.name for camera in self._policy.spec.cameras))

    def _env_for(self, policy: EpisodeGuardedPolicy, scene: SceneConfig) -> Any:
        cameras = tuple(self._camera_names())
        key = (policy.spec.action_space, cameras, scene)
        if key != self._env_key:
            if self._env is not None:
                self._env.close()  # one env at a time: renderers hold GL contexts and memory
            self._env = make_env(self.env_settings, policy.spec.action_space, cameras, scene)
            self._env_key = key
        return self._env


def make_env(
    settings: EnvSettings, action_space: str, camera_names: Sequence[str], scene: SceneConfig
) -> Any:
    """The env for a policy in ``scene``, rendering only the cameras the policy reads.

    A camera the scene lacks is left out here, so the observation check names it with the keys provided.
    """
    from libs.sim.env import SO101PickPlaceEnv

    scene = scene.with_cameras([name for name in camera_names if name in scene.camera_names])
    kwargs: dict[str, Any] = {"scene": scene, "action_space": action_space}
    if settings.max_steps is not None:
        kwargs["max_steps"] = settings.max_steps
    if settings.task is not None:
        kwargs["task"] = settings.task
    return SO101PickPlaceEnv(**kwargs)
