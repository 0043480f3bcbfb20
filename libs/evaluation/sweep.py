"""Scores every checkpoint of a run on the same seeds, in parallel on Ray, resumably: planning, the
results store and the report.

The checkpoints, each with its card and decided scene (``libs.evaluation.checkpoints``), become tasks
(checkpoint-major, so a worker loads each policy once); the tasks run on the Ray pool
(``libs.evaluation.ray_pool``: one ``libs.evaluation.executor.EpisodeExecutor`` per worker) or, with
``serial=True``, on one executor in this process (debuggers, benchmarks' baseline). Every finished episode
is written to the results store before the next is handed out, so killing the sweep loses at most the
episodes in flight, and running the same command again only runs what is missing.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from libs.evaluation.arms import arm_checkpoint_id, arm_differences, arms_section
from libs.evaluation.checkpoints import CheckpointTarget, file_safe_id, plan_checkpoints

# EnvSettings, EpisodeTask, EpisodeExecutor, SweepError and connect_ray are part of this module's interface
# (the CLI, tests and benchmarks import them from here).
from libs.evaluation.executor import (
    EnvSettings,
    EpisodeExecutor,
    EpisodeTask,
    SweepError,
    lockstep_batches,
)
from libs.evaluation.ray_pool import connect_ray, run_on_ray, start_workers, stop_workers
from libs.evaluation.records import EpisodeRecord
from libs.evaluation.report import GridSpec, Report, write_provenance, write_report
from libs.evaluation.store import STORE_FILE_NAME, ResultsStore
from libs.evaluation.until_decided import UntilDecided, decision_section, fixed_design_episodes
from libs.policy_api.card import dataset_block_positions
from libs.report_html.plan import write_sweep_plan
from libs.report_html.sweep_page import write_report_html


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
            # Batched sampling draws one batch's noise together: the batch size decides those episodes.
            **({"lockstep_envs": self.env.lockstep_envs} if self.env.lockstep_envs > 1 else {}),
        }


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
    write_sweep_plan(out, tasks)  # what was asked: the pages show done of planned, and each episode's command
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
        from libs.evaluation.sweep_whiskers import record_sweep_whiskers

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
    write_report_html(out)  # report.html beside report.md, drawn from the folder's files (libs.report_html)
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
    episodes = per_round * len(targets)
    actors = [] if config.serial else start_workers(config.env, config.workers, episodes, len(targets))
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
                    _run_batches(executor, round_tasks, config, record_done)
                else:
                    # Each call returns the workers' loads so far (they live across rounds).
                    loads = run_on_ray(
                        round_tasks, actors, record_done, config.episode_timeout_s, config.env.lockstep_envs
                    )
        finally:
            stop_workers(actors)
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
        actors = start_workers(config.env, config.workers, len(todo))
        try:
            return run_on_ray(todo, actors, record_done, config.episode_timeout_s, config.env.lockstep_envs)
        finally:
            stop_workers(actors)


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
    _run_batches(executor, list(tasks), config, record_done)
    return executor.policy_loads


def _run_batches(
    executor: EpisodeExecutor,
    tasks: Sequence[EpisodeTask],
    config: SweepConfig,
    record_done: Callable[[EpisodeRecord], None],
) -> None:
    """In this process: each batch of ``--lockstep-envs`` episodes of one checkpoint together."""
    for batch in lockstep_batches(tasks, config.env.lockstep_envs):
        for record in executor.run_batch(batch):
            record_done(record)


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
