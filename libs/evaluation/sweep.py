"""Scores every checkpoint of a run on the same seeds, in parallel on Ray, resumably.

One Ray actor per worker keeps one env and the policy of the checkpoint it is working on, so a policy is
loaded once per worker per checkpoint (tasks are dispatched checkpoint by checkpoint). Every finished
episode is written to the results store before the next is handed out, so killing the sweep loses at most
the episodes in flight, and running the same command again only runs what is missing. ``serial=True``
runs the same code in this process without Ray (debuggers, benchmarks' baseline).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from tqdm import tqdm

from libs.evaluation.arms import arm_checkpoint_id, arm_differences, arms_section
from libs.evaluation.checkpoints import (
    CheckpointTarget,
    EvaluationScene,
    decide_scene,
    file_safe_id,
    plan_checkpoints,
)
from libs.evaluation.ray_auth import ClusterAuthError, join_with_token_auth
from libs.evaluation.records import EpisodeRecord
from libs.evaluation.report import GridSpec, Report, write_provenance, write_report
from libs.evaluation.runner import EpisodeResult, InferenceEvent, StepEvent, run_episode
from libs.evaluation.store import STORE_FILE_NAME, ResultsStore
from libs.evaluation.training_scene import check_training_scene
from libs.evaluation.until_decided import UntilDecided, decision_section, fixed_design_episodes
from libs.policy_api.card import CheckpointCard, dataset_block_positions
from libs.policy_api.contracts import ContractViolation, EpisodeGuardedPolicy, check_scene_matches
from libs.policy_api.registry import PolicyLoadError, make_policy
from libs.policy_api.types import PolicySpec

#: Ray's object store is only used for small records; a cap keeps a laptop's /dev/shm free.
OBJECT_STORE_BYTES = 200 * 1024 * 1024


class SweepError(RuntimeError):
    """The sweep cannot go on; the message is one line naming the problem and the fix."""


@dataclass(frozen=True)
class EnvSettings:
    """How each worker builds its env (the action space and cameras come from the policy's spec)."""

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


@dataclass
class SweepConfig:
    policy: str
    episodes: int = 10
    base_seed: int = 0
    #: (columns, rows): evaluate on a regular grid of block positions instead of random seeds.
    grid: tuple[int, int] | None = None
    env: EnvSettings = field(default_factory=EnvSettings)
    workers: int | None = None
    ray_address: str | None = None
    serial: bool = False
    #: No episode finishing for this long means a worker hangs.
    episode_timeout_s: float = 600.0
    #: Dataset whose recorded block positions are drawn on the --grid map (else each checkpoint card's).
    training_data: str | None = None
    progress: bool = True
    #: Episodes per checkpoint played again with whiskers (libs.viz: videos, plots, likely causes in the
    #: report), in this process after the sweep; 0 = none. ``whiskers_mode``: dynamic | kinematic.
    whiskers: int = 0
    whiskers_mode: str = "dynamic"
    #: A second policy scored on the same seeds (its checkpoints follow ``policy``'s).
    compare_to: str | None = None
    #: Run in rounds until the sequential test decides (``episodes`` is then ignored: the budget rules).
    until_decided: UntilDecided | None = None
    #: Perturbation arms of the --scene to run on the same seeds as each checkpoint (("all",) = every one).
    perturbations: tuple[str, ...] = ()

    def settings(self) -> dict[str, Any]:
        """What decides the results; a resumed sweep must repeat these exactly."""
        scene_text = Path(self.env.scene_path).read_text() if self.env.scene_path else None
        return {
            "policy": self.policy,
            "base_seed": self.base_seed,
            "grid": list(self.grid) if self.grid else None,
            "scene": json.loads(scene_text)
            if scene_text
            else "each checkpoint's own (else the bench default)",
            "max_steps": self.env.max_steps,
            "task": self.env.task,
            # Only when set, so stores written before these options existed still resume.
            **({"compare_to": self.compare_to} if self.compare_to else {}),
            **({"until_decided": self.until_decided.settings()} if self.until_decided else {}),
            **({"perturbations": list(self.perturbations)} if self.perturbations else {}),
        }


# --------------------------------------------------------------------------- worker side


@dataclass
class _Loaded:
    """A loaded policy with its target (card and decided scene) and its dataset's ``action`` stats."""

    policy: EpisodeGuardedPolicy
    target: CheckpointTarget
    action_stats: Any


class EpisodeExecutor:
    """Runs episodes for one worker: caches one env per (action space, cameras, scene) and the current
    policy."""

    def __init__(self, env_settings: EnvSettings, keep_policies: int = 1) -> None:
        self.env_settings = env_settings
        self._current: _Loaded | None = None
        self._envs: dict[tuple[Any, ...], Any] = {}
        self.policy_loads = 0
        #: Policies kept loaded besides the current one (a paired --until-decided sweep alternates two).
        self._keep_policies = max(1, keep_policies)
        self._parked: dict[str, _Loaded] = {}

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
        policy, action_stats, env = self._prepare(task.target)
        assert self._current is not None
        return run_episode(
            policy,
            env,
            task.seed,
            checkpoint_id=task.target.checkpoint_id,
            step=self._current.target.step,
            action_stats=action_stats,
            block_xy=task.block_xy,
            grid_cell=task.grid_cell,
            on_inference=on_inference,
            keep_chunks=keep_chunks,
            on_step=on_step,
        )

    def prepared(self, target: CheckpointTarget) -> tuple[EpisodeGuardedPolicy, Any, Any]:
        """(policy, its dataset's ``action`` stats or None, env) for ``target``, loading it if needed."""
        return self._prepare(target)

    def _prepare(self, target: CheckpointTarget) -> tuple[EpisodeGuardedPolicy, Any, Any]:
        current = self._current
        if current is None or current.target.policy_uri != target.policy_uri:
            if current is not None and self._keep_policies > 1:
                self._parked[current.target.policy_uri] = current
                while len(self._parked) >= self._keep_policies:
                    self._parked.pop(next(iter(self._parked)))
            self._current = None  # free the previous checkpoint before loading the next
            current = self._parked.pop(target.policy_uri, None) or self._load(target)
            self._current = current
        env = self._env_for(current.policy.spec, current.target.scene, target.perturbation)
        return current.policy, current.action_stats, env

    def _load(self, target: CheckpointTarget) -> _Loaded:
        policy = EpisodeGuardedPolicy(make_policy(target.policy_uri))
        self.policy_loads += 1
        if target.scene is None:  # made by hand, not planned: decided here by the planner's rule
            target = target.with_scene(policy.card, self.env_settings.scene_path)
        assert target.scene is not None
        env = self._env_for(policy.spec, target.scene, target.perturbation)
        if self.env_settings.check_scene:
            check_against_training(env.scene, target, [camera.name for camera in policy.spec.cameras])
        action_stats = target.card.action_stats if target.card is not None else None
        return _Loaded(policy, target, action_stats)

    def _env_for(
        self, spec: PolicySpec, scene: EvaluationScene | None, perturbation: str | None = None
    ) -> Any:
        camera_names = tuple(dict.fromkeys(camera.name for camera in spec.cameras))
        scene_key = json.dumps(scene.config, sort_keys=True) if scene is not None else None
        key = (spec.action_space, camera_names, scene_key, perturbation)
        if key not in self._envs:
            self._envs.clear()  # one env at a time: renderers hold GL contexts and memory
            self._envs[key] = make_env(
                self.env_settings, spec.action_space, camera_names, scene, perturbation
            )
        return self._envs[key]


def check_against_training(env_scene: Any, target: CheckpointTarget, camera_names: Sequence[str]) -> None:
    """The scene ``target`` is evaluated in against its card's training scene: evaluated in its carried
    scene, that scene must be its training dataset's; with --scene, the cameras it reads must match."""
    from libs.sim.scene_config import SceneConfig

    card: CheckpointCard | None = target.card
    if card is None or card.scene is None:
        return
    if target.scene is not None and target.scene.is_training_scene:
        check_training_scene(target.path, card.scene, card.dataset)
    check_scene_matches(env_scene, card.scene, SceneConfig.from_dict, camera_names)


def make_env(
    settings: EnvSettings,
    action_space: str,
    camera_names: Sequence[str],
    scene: EvaluationScene | None = None,
    perturbation: str | None = None,
) -> Any:
    """The env for a policy in ``scene`` (a checkpoint's decided scene; None: the sweep's --scene, else the
    default), rendering only the cameras the policy reads. A camera the scene lacks is one line naming the
    scene's cameras.
    """
    from libs.sim.env import SO101PickPlaceEnv

    scene = scene if scene is not None else decide_scene(None, settings.scene_path)
    config = scene.load()
    missing = [name for name in camera_names if name not in config.camera_names]
    if missing:
        raise ContractViolation(
            f"the policy reads camera(s) {', '.join(missing)} but {scene.source} has "
            f"{', '.join(config.camera_names) or 'no cameras'}: evaluate in the scene the checkpoint was "
            "trained in, or give --scene a scene with those cameras"
        )
    config = config.with_cameras([name for name in camera_names if name in config.camera_names])
    kwargs: dict[str, Any] = {"scene": config, "action_space": action_space, "perturbation": perturbation}
    if settings.max_steps is not None:
        kwargs["max_steps"] = settings.max_steps
    if settings.task is not None:
        kwargs["task"] = settings.task
    return SO101PickPlaceEnv(**kwargs)


# --------------------------------------------------------------------------- planning


def grid_points(
    grid: tuple[int, int], region_xy: tuple[tuple[float, float], tuple[float, float]]
) -> list[tuple[tuple[int, int], tuple[float, float]]]:
    """((column, row), (x, y)) for a columns × rows grid spanning the region, corners included."""
    columns, rows = grid
    (x_min, x_max), (y_min, y_max) = region_xy
    points = []
    for row in range(rows):
        for column in range(columns):
            x = x_min + (x_max - x_min) * (column / (columns - 1) if columns > 1 else 0.5)
            y = y_min + (y_max - y_min) * (row / (rows - 1) if rows > 1 else 0.5)
            points.append(((column, row), (round(x, 6), round(y, 6))))
    return points


def plan_tasks(targets: Sequence[CheckpointTarget], config: SweepConfig) -> list[EpisodeTask]:
    """Checkpoint-major, so each worker moves through checkpoints in order (one load each); every
    checkpoint gets the same seeds (and, with a grid, the same cells over the block region of the scene it
    is evaluated in: the same positions for checkpoints evaluated in one scene)."""
    tasks = []
    for target in targets:
        if config.grid is not None:
            for index, (cell, xy) in enumerate(grid_points(config.grid, _block_region(target))):
                tasks.append(EpisodeTask(target, config.base_seed + index, xy, cell))
        else:
            tasks.extend(EpisodeTask(target, config.base_seed + i) for i in range(config.episodes))
    return tasks


# --------------------------------------------------------------------------- driver


@dataclass
class SweepResult:
    out_dir: Path
    report: Report
    ran: int
    skipped: int
    policy_loads: int | None = None
    #: --until-decided: the report's "sequential" data (verdict, episodes run and saved).
    decision: dict[str, Any] | None = None


def evaluate(
    config: SweepConfig,
    out_dir: str | Path,
    argv: Sequence[str] | None = None,
    on_record: Callable[[EpisodeRecord], None] | None = None,
) -> SweepResult:
    """Run what is missing of the sweep into ``out_dir`` and (re)write its report."""
    out = Path(out_dir)
    if config.grid is not None and min(config.grid) < 1:
        raise SweepError(f"--grid {config.grid} needs at least 1×1 cells: e.g. --grid 5x5")
    if config.grid is None and config.episodes < 1:
        raise SweepError(f"--episodes {config.episodes} must be at least 1")
    # Each checkpoint's card is read and its scene decided here, once, for every later step.
    targets = plan_checkpoints(config.policy, config.env.scene_path)
    if config.compare_to:
        targets += plan_checkpoints(config.compare_to, config.env.scene_path)
    rule = config.until_decided
    if rule is not None:
        _check_until_decided(targets, config, rule)
        config = replace(config, episodes=rule.max_episodes)
    controls = [target.checkpoint_id for target in targets]
    arms = _perturbation_arms(config, rule)
    # Each checkpoint's arms right after it, so a worker loads each policy once (an arm only changes the env).
    targets = [
        variant
        for target in targets
        for variant in [
            target,
            *(
                replace(target, checkpoint_id=arm_checkpoint_id(target.checkpoint_id, arm), perturbation=arm)
                for arm in arms
            ),
        ]
    ]
    tasks = plan_tasks(targets, config)
    out.mkdir(parents=True, exist_ok=True)
    write_provenance(out, argv)
    with ResultsStore(out / STORE_FILE_NAME) as store:
        store.bind_settings(config.settings())
        done = store.done_keys()
        todo = [task for task in tasks if task.key not in done]
        loads = None
        # Ray starts before the progress bar so its start-up does not distort the rate and ETA.
        started_ray = connect_ray(config.ray_address, config.workers) if todo and not config.serial else False
        try:
            if rule is not None:
                loads = _run_until_decided(targets, tasks, config, rule, store, on_record)
            elif todo:
                loads = _run_with_progress(todo, len(tasks), config, store, on_record)
        finally:
            if started_ray:
                import ray

                ray.shutdown()
        wanted = {task.key for task in tasks}
        records = [record for record in store.records() if record.key in wanted]
    sections = []
    if arms:
        sections.append(arms_section(arm_differences(records, controls, arms)))
        # The main table ranks and compares the checkpoints themselves; the arms have their own section.
        records = [record for record in records if record.checkpoint_id in controls]
    if rule is not None:
        ids = [target.checkpoint_id for target in targets]
        seeds = sorted({task.seed for task in tasks})
        decision = rule.decide(records, ids, seeds)
        spent = min(len({r.seed for r in records if r.checkpoint_id == i}) for i in ids)
        sections.append(
            decision_section(
                decision, spent, fixed_design_episodes(rule, records, ids), _round_episodes(rule, config)
            )
        )
        todo = [task for task in todo if task.key in {record.key for record in records}]
    _write_evaluated_scenes(targets, out)
    # The map is drawn over the first checkpoint's region (a run's checkpoints share their training scene).
    grid = GridSpec(*config.grid, _block_region(targets[0])) if config.grid is not None else None
    training_xy = _training_block_positions(targets, config) if grid is not None else None
    if config.whiskers > 0:
        from libs.viz.sweep_whiskers import record_sweep_whiskers

        outcomes = {record.key: record.outcome for record in records}
        _, section = record_sweep_whiskers(
            tasks,
            config.whiskers,
            EpisodeExecutor(config.env),
            out,
            outcomes=outcomes,
            mode=config.whiskers_mode,
            progress=config.progress,
        )
        sections.append(section)
    episodes = spent if rule is not None else config.episodes
    report = write_report(
        records, out, config.settings() | {"episodes": episodes}, grid, training_xy, sections
    )
    skipped = len(records) - len(todo) if rule is not None else len(tasks) - len(todo)
    return SweepResult(
        out,
        report,
        ran=len(todo),
        skipped=skipped,
        policy_loads=loads,
        decision=sections[0].data if rule is not None else None,
    )


def _perturbation_arms(config: SweepConfig, rule: UntilDecided | None) -> list[str]:
    """The arm names to run: declared in the --scene, all of them for ``all``."""
    if not config.perturbations:
        return []
    if rule is not None:
        raise SweepError("--perturbations and --until-decided do not combine: run the arms as a fixed sweep")
    if not config.env.scene_path:
        raise SweepError(
            "--perturbations needs --scene: a scene.json whose 'perturbations' list declares the arms "
            "(start from the checkpoint's own scene.json so the cameras match)"
        )
    from libs.sim.scene_config import SceneConfig

    scene = SceneConfig.load(config.env.scene_path)
    declared = [arm.name for arm in scene.perturbations]
    if tuple(config.perturbations) == ("all",):
        if not declared:
            raise SweepError(f"--perturbations all: {config.env.scene_path} declares no perturbations")
        return declared
    for name in config.perturbations:
        scene.perturbation(name)  # one line naming the declared arms when it is not one of them
    return list(dict.fromkeys(config.perturbations))


def _check_until_decided(
    targets: Sequence[CheckpointTarget], config: SweepConfig, rule: UntilDecided
) -> None:
    if config.grid is not None:
        raise SweepError("--until-decided runs random seeds in rounds: drop --grid (or --until-decided)")
    if len(targets) != rule.checkpoints_needed:
        what = (
            "one checkpoint against --target-rate"
            if rule.target_rate is not None
            else "two checkpoints (--policy and --compare-to, or a run with exactly two checkpoints)"
        )
        named = ", ".join(target.checkpoint_id for target in targets)
        raise SweepError(
            f"--until-decided compares {what}, but the policies name {len(targets)}: {named}; "
            "point --policy (and --compare-to) at single checkpoint folders"
        )
    if len({target.checkpoint_id for target in targets}) != len(targets):
        raise SweepError(
            f"--policy and --compare-to name the same checkpoint id {targets[0].checkpoint_id!r}: "
            "compare two different checkpoints"
        )


def _round_episodes(rule: UntilDecided, config: SweepConfig) -> int:
    if rule.round_episodes is not None:
        return rule.round_episodes
    if config.serial:
        return 1
    return max(1, config.workers or os.cpu_count() or 1)


def _run_until_decided(
    targets: Sequence[CheckpointTarget],
    tasks: Sequence[EpisodeTask],
    config: SweepConfig,
    rule: UntilDecided,
    store: ResultsStore,
    on_record: Callable[[EpisodeRecord], None] | None,
) -> int:
    """Rounds of ``round_episodes`` seeds for every checkpoint until the test decides or the budget ends.

    The workers (and the policies they hold) live across rounds."""
    ids = [target.checkpoint_id for target in targets]
    seeds = sorted({task.seed for task in tasks})
    per_round = _round_episodes(rule, config)
    executor = EpisodeExecutor(config.env, keep_policies=len(targets)) if config.serial else None
    actors = None if config.serial else _start_workers(config, per_round * len(targets), len(targets))
    loads = 0
    with _recording(store, config, on_record, "until decided", len(tasks)) as (bar, record_done):
        try:
            while True:
                done = store.done_keys()
                bar.n = sum(task.key in done for task in tasks)
                bar.refresh()
                decision = rule.decide(store.records(), ids, seeds)
                missing = [s for s in seeds if any((checkpoint, s) not in done for checkpoint in ids)]
                if decision.decided or not missing:
                    break
                chosen = set(missing[:per_round])
                round_tasks = [task for task in tasks if task.seed in chosen and task.key not in done]
                if executor is not None:
                    for task in round_tasks:
                        record_done(executor.run(task))
                else:
                    # Each call returns the workers' loads so far (they live across rounds).
                    loads = _run_on_ray(round_tasks, config, record_done, actors)
        finally:
            if actors is not None:
                import ray

                for actor in actors:
                    ray.kill(actor)
    return executor.policy_loads if executor is not None else loads


def _run_with_progress(
    todo: Sequence[EpisodeTask],
    total: int,
    config: SweepConfig,
    store: ResultsStore,
    on_record: Callable[[EpisodeRecord], None] | None,
) -> int:
    with _recording(store, config, on_record, "evaluating", total, total - len(todo)) as (_, record_done):
        if config.serial:
            return _run_serial(todo, config, record_done)
        return _run_on_ray(todo, config, record_done)


@contextlib.contextmanager
def _recording(
    store: ResultsStore,
    config: SweepConfig,
    on_record: Callable[[EpisodeRecord], None] | None,
    desc: str,
    total: int,
    initial: int = 0,
) -> Iterator[tuple[tqdm, Callable[[EpisodeRecord], None]]]:
    """A progress bar and the callback every finished episode goes through: stored at once (a kill after
    the store write loses nothing), counted, then handed to ``on_record``."""
    with tqdm(
        total=total,
        initial=initial,
        unit="episode",
        desc=desc,
        disable=not config.progress,
        dynamic_ncols=True,
    ) as bar:

        def record_done(record: EpisodeRecord) -> None:
            store.append(record)
            bar.update(1)
            if on_record is not None:
                on_record(record)

        yield bar, record_done


def _block_region(target: CheckpointTarget) -> tuple[tuple[float, float], tuple[float, float]]:
    """The ``--grid`` region of the scene ``target`` is evaluated in (decided once, by planning)."""
    assert target.scene is not None, "planned targets carry their scene"
    return target.scene.block_region()


def _run_serial(
    tasks: Iterable[EpisodeTask], config: SweepConfig, record_done: Callable[[EpisodeRecord], None]
) -> int:
    executor = EpisodeExecutor(config.env)
    for task in tasks:
        record_done(executor.run(task))
    return executor.policy_loads


EPISODES_QUEUED_PER_WORKER = 2


def _start_workers(config: SweepConfig, episodes: int, keep_policies: int = 1) -> list[Any]:
    """One Ray actor per worker (no more than there are episodes to run)."""
    import ray

    available = int(ray.cluster_resources().get("CPU", 1))
    workers = max(1, min(config.workers or available, available, episodes))
    worker_class = _episode_worker_class()
    return [worker_class.remote(config.env, keep_policies) for _ in range(workers)]


def _run_on_ray(
    tasks: Sequence[EpisodeTask],
    config: SweepConfig,
    record_done: Callable[[EpisodeRecord], None],
    actors: list[Any] | None = None,
) -> int:
    """Runs ``tasks`` on ``actors`` (kept alive for the caller) or on workers started and stopped here."""
    import ray

    owned = actors is None
    actors = _start_workers(config, len(tasks)) if actors is None else actors
    workers = len(actors)
    try:
        # Each worker holds a second episode in its queue, so it starts the next one the moment it finishes
        # instead of idling through the round trip to this driver (result, store write, next submit).
        idle = [actor for actor in actors for _ in range(EPISODES_QUEUED_PER_WORKER)]
        pending: dict[Any, Any] = {}
        queue = list(reversed(tasks))
        while queue or pending:
            while idle and queue:
                actor = idle.pop()
                pending[actor.run.remote(queue.pop())] = actor
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=config.episode_timeout_s)
            if not ready:
                raise SweepError(
                    f"no episode finished within {config.episode_timeout_s:.0f} s on {workers} Ray workers: "
                    "a worker hangs (check the policy) or episodes are slower; raise --episode-timeout"
                )
            for ref in ready:
                actor = pending.pop(ref)
                record_done(EpisodeRecord.from_dict(_get(ref)))
                idle.append(actor)
        return sum(_get(actor.policy_loads.remote()) for actor in actors)
    finally:
        # Free the workers' CPUs now: a caller may keep Ray up for the next sweep.
        for actor in actors if owned else ():
            ray.kill(actor)


def _get(ref: Any, timeout_s: float = 120.0) -> Any:
    """ray.get that surfaces the worker's own one-line error instead of a remote traceback."""
    import ray
    from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

    try:
        return ray.get(ref, timeout=timeout_s)
    except RayTaskError as error:
        cause = getattr(error, "cause", None)
        if isinstance(cause, ContractViolation | PolicyLoadError | SweepError | ValueError):
            raise cause from None
        raise
    except RayActorError as error:
        # The worker died more often than its restarts allow (each death is retried first).
        raise SweepError(
            "a Ray worker process died repeatedly (out of memory, or a crash in the renderer or the "
            "policy): the episodes stored so far are kept; rerun the same command to resume, with fewer "
            f"--workers if memory is short ({type(error).__name__})"
        ) from error
    except GetTimeoutError as error:
        raise SweepError(
            f"a Ray worker did not answer within {timeout_s:.0f} s: check the cluster's health"
        ) from error


_WORKER_CLASS: Any = None


def _episode_worker_class() -> Any:
    """The Ray actor class, built lazily so importing this module does not import Ray."""
    global _WORKER_CLASS
    if _WORKER_CLASS is None:
        import ray

        # A worker process that dies (OOM, segfault in a renderer) is restarted and its episode retried.
        @ray.remote(num_cpus=1, max_restarts=2, max_task_retries=2)
        class EpisodeWorker:
            def __init__(self, env_settings: EnvSettings, keep_policies: int = 1) -> None:
                self.executor = EpisodeExecutor(env_settings, keep_policies)

            def run(self, task: EpisodeTask) -> dict[str, Any]:
                return self.executor.run(task).to_dict()

            def policy_loads(self) -> int:
                return self.executor.policy_loads

        _WORKER_CLASS = EpisodeWorker
    return _WORKER_CLASS


def connect_ray(address: str | None, workers: int | None = None) -> bool:
    """Join ``address`` or start Ray on local cores. Returns True when this call started Ray."""
    import ray

    if address and address not in ("local", "auto"):
        _check_reachable(address)
        try:
            join_with_token_auth(address)
        except ClusterAuthError as error:
            raise SweepError(str(error)) from None
    if ray.is_initialized():
        return False
    try:
        if address and address != "local":
            ray.init(
                address=address,
                include_dashboard=False,
                log_to_driver=False,
                logging_level="ERROR",
                runtime_env={"py_modules": _code_packages()},
            )
        else:
            ray.init(
                num_cpus=workers or os.cpu_count() or 1,
                object_store_memory=OBJECT_STORE_BYTES,
                include_dashboard=False,
                log_to_driver=False,
                logging_level="ERROR",
            )
    except Exception as error:  # Ray raises a bare Exception when its node does not come up in time
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if not address or address == "local":
            raise SweepError(
                f"Ray could not start on this machine's cores ({first_line}): on a busy machine its "
                "processes can miss their start-up deadline; rerun, or pass --serial to run without Ray"
            ) from None
        raise SweepError(
            f"cannot join the Ray cluster at {address or 'local'} ({first_line}): check that it runs the "
            "same Ray version (`ray status` on the head), or drop --ray-address to use local cores"
        ) from None
    return True


def _code_packages() -> list[Any]:
    """This repo's packages, shipped to a remote cluster's workers (its nodes have the third-party stack
    but not this checkout)."""
    import importlib

    packages = []
    for name in ("libs", "scenes", "backends"):
        try:
            packages.append(importlib.import_module(name))
        except ImportError:
            continue
    return packages


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    host, port = parsed.hostname, parsed.port or (10001 if parsed.scheme == "ray" else 6379)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return
    except (OSError, ValueError) as error:
        raise SweepError(
            f"cannot reach a Ray cluster at {address} ({error.__class__.__name__}: {error}): start it with "
            "`ray start --head` there, check host and port, or drop --ray-address to use local cores"
        ) from None


# --------------------------------------------------------------------------- scenes evaluated in

#: ``OUT/scenes/<checkpoint>.json``: the scene (cameras, FOV, image size, objects) each checkpoint ran in.
SCENES_DIR = "scenes"


def _write_evaluated_scenes(targets: Sequence[CheckpointTarget], out: Path) -> None:
    """Saves the scene each checkpoint was evaluated in (its decided scene) beside the results."""
    folder = out / SCENES_DIR
    folder.mkdir(exist_ok=True)
    for target in targets:
        if target.scene is not None:
            text = json.dumps(target.scene.config, indent=2, sort_keys=True) + "\n"
            (folder / f"{file_safe_id(target.checkpoint_id)}.json").write_text(text)


# --------------------------------------------------------------------------- training data positions


def _training_block_positions(targets: Sequence[CheckpointTarget], config: SweepConfig) -> dict[str, Any]:
    """checkpoint id → the training episodes' initial block xy: --training-data's, else each card's."""
    shared = None
    if config.training_data:
        if not Path(config.training_data).exists():
            raise SweepError(
                f"--training-data {config.training_data} does not exist: pass a recorded dataset's root "
                "folder"
            )
        shared = dataset_block_positions(config.training_data)
    positions: dict[str, Any] = {}
    for target in targets:
        found = shared if shared is not None else (target.card.block_positions if target.card else None)
        if found is not None:
            positions[target.checkpoint_id] = found
    return positions
