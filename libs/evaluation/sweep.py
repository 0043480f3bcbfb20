"""Plans a sweep, keeps its results, and writes its report: every checkpoint of a run on the same seeds.

Planning: the policy string becomes checkpoints, each with its card and its decided scene
(``libs.evaluation.checkpoints``), then checkpoint-major episode tasks on shared seeds (or a ``--grid`` of
block positions over the first checkpoint's decided scene). Playing: the tasks not yet in the results
store go to this process's ``EpisodeExecutor`` (``serial``) or to the Ray pool (``libs.evaluation.ray_pool``)
in one call of ``play``, which stores each record the moment it arrives, so killing the sweep loses at most
the episodes in flight and running the same command again only runs what is missing. Then whiskers
(``libs.evaluation.whiskers``) and the report.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from libs.datasets.lerobot_v3 import read_block_positions
from libs.evaluation.checkpoints import CheckpointTarget, checkpoints_to_evaluate, file_safe_id
from libs.evaluation.executor import EnvSettings, EpisodeExecutor, EpisodeTask
from libs.evaluation.ray_pool import SweepError, connect_ray, run_on_ray
from libs.evaluation.records import EpisodeRecord
from libs.evaluation.report import GridSpec, Report, write_provenance, write_report
from libs.evaluation.store import STORE_FILE_NAME, ResultsStore

Region = tuple[tuple[float, float], tuple[float, float]]


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
        }


# --------------------------------------------------------------------------- planning


@dataclass
class SweepPlan:
    """What a sweep evaluates: checkpoints (card read, scene decided), their tasks and the grid region."""

    targets: list[CheckpointTarget]
    tasks: list[EpisodeTask]
    region: Region | None = None

    def missing(self, done: set[tuple[str, int]]) -> list[EpisodeTask]:
        return [task for task in self.tasks if task.key not in done]


def plan_sweep(config: SweepConfig) -> SweepPlan:
    if config.grid is not None and min(config.grid) < 1:
        raise SweepError(f"--grid {config.grid} needs at least 1×1 cells: e.g. --grid 5x5")
    if config.grid is None and config.episodes < 1:
        raise SweepError(f"--episodes {config.episodes} must be at least 1")
    targets = checkpoints_to_evaluate(config.policy, config.env.scene_path)
    region = _block_region(targets[0]) if config.grid is not None else None
    return SweepPlan(targets, plan_tasks(targets, config, region), region)


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


def plan_tasks(
    targets: Sequence[CheckpointTarget], config: SweepConfig, region_xy: Region | None = None
) -> list[EpisodeTask]:
    """Checkpoint-major, so each worker moves through checkpoints in order (one load each); every
    checkpoint gets the same seeds (and, with a grid, the same block positions)."""
    tasks = []
    for target in targets:
        if config.grid is not None:
            assert region_xy is not None
            for index, (cell, xy) in enumerate(grid_points(config.grid, region_xy)):
                tasks.append(EpisodeTask(target, config.base_seed + index, xy, cell))
        else:
            tasks.extend(EpisodeTask(target, config.base_seed + i) for i in range(config.episodes))
    return tasks


def _block_region(target: CheckpointTarget) -> Region:
    assert target.scene is not None
    (x_min, x_max), (y_min, y_max) = target.scene.block_region_xy
    return ((float(x_min), float(x_max)), (float(y_min), float(y_max)))


# --------------------------------------------------------------------------- playing and storing


@dataclass
class SweepResult:
    out_dir: Path
    report: Report
    ran: int
    skipped: int
    policy_loads: int | None = None


def evaluate(
    config: SweepConfig,
    out_dir: str | Path,
    argv: Sequence[str] | None = None,
    on_record: Callable[[EpisodeRecord], None] | None = None,
) -> SweepResult:
    """Run what is missing of the sweep into ``out_dir`` and (re)write its report."""
    out = Path(out_dir)
    plan = plan_sweep(config)
    out.mkdir(parents=True, exist_ok=True)
    write_provenance(out, argv)
    with ResultsStore(out / STORE_FILE_NAME) as store:
        store.bind_settings(config.settings())
        todo = plan.missing(store.done_keys())
        loads = play(todo, len(plan.tasks), config, store, on_record) if todo else None
        wanted = {task.key for task in plan.tasks}
        records = [record for record in store.records() if record.key in wanted]
    write_evaluated_scenes(plan.targets, out)
    grid = GridSpec(config.grid[0], config.grid[1], plan.region) if config.grid is not None else None
    training_xy = training_block_positions(plan.targets, config.training_data) if grid is not None else None
    sections = []
    if config.whiskers > 0:
        from libs.evaluation.whiskers import record_sweep_whiskers

        outcomes = {record.key: record.outcome for record in records}
        _, section = record_sweep_whiskers(
            plan.tasks,
            config.whiskers,
            EpisodeExecutor(config.env),
            out,
            outcomes=outcomes,
            mode=config.whiskers_mode,
            progress=config.progress,
        )
        sections.append(section)
    report = write_report(
        records, out, config.settings() | {"episodes": config.episodes}, grid, training_xy, sections
    )
    return SweepResult(out, report, ran=len(todo), skipped=len(plan.tasks) - len(todo), policy_loads=loads)


def play(
    todo: Sequence[EpisodeTask],
    total: int,
    config: SweepConfig,
    store: ResultsStore,
    on_record: Callable[[EpisodeRecord], None] | None = None,
) -> int:
    """Plays ``todo`` (in this process or on Ray), storing each record as it arrives; returns policy loads.

    ``total`` is the plan's size, for the progress bar (the stored episodes count as done)."""
    # Ray starts before the progress bar so its start-up does not distort the rate and ETA.
    started_ray = False if config.serial else connect_ray(config.ray_address, config.workers)
    try:
        with tqdm(
            total=total,
            initial=total - len(todo),
            unit="episode",
            desc="evaluating",
            disable=not config.progress,
            dynamic_ncols=True,
        ) as bar:

            def record_done(record: EpisodeRecord) -> None:
                store.append(record)  # at once: a kill after this line loses nothing
                bar.update(1)
                if on_record is not None:
                    on_record(record)

            if config.serial:
                executor = EpisodeExecutor(config.env)
                for task in todo:
                    record_done(executor.run(task))
                return executor.policy_loads
            return run_on_ray(
                todo,
                config.env,
                record_done,
                workers=config.workers,
                episode_timeout_s=config.episode_timeout_s,
            )
    finally:
        if started_ray:
            import ray

            ray.shutdown()


# --------------------------------------------------------------------------- what the report draws on

#: ``OUT/scenes/<checkpoint>.json``: the scene (cameras, FOV, image size, objects) each checkpoint ran in.
SCENES_DIR = "scenes"


def write_evaluated_scenes(targets: Sequence[CheckpointTarget], out: Path) -> None:
    """Saves the scene every checkpoint was evaluated in (its decided scene) beside the results."""
    folder = out / SCENES_DIR
    folder.mkdir(exist_ok=True)
    for target in targets:
        assert target.scene is not None
        text = json.dumps(target.scene.to_dict(), indent=2, sort_keys=True) + "\n"
        (folder / f"{file_safe_id(target.checkpoint_id)}.json").write_text(text)


def training_block_positions(
    targets: Sequence[CheckpointTarget], training_data: str | None
) -> dict[str, list[list[float]]]:
    """checkpoint id → the training episodes' initial block xy: ``--training-data``'s, else each card's."""
    shared = None
    if training_data:
        if not Path(training_data).exists():
            raise SweepError(
                f"--training-data {training_data} does not exist: pass a recorded dataset's root folder"
            )
        shared = read_block_positions(training_data)
    positions = {}
    for target in targets:
        found = shared if shared is not None else (target.card.block_positions if target.card else None)
        if found is not None:
            positions[target.checkpoint_id] = [[float(x), float(y)] for x, y, *_ in found]
    return positions
