"""Scores every checkpoint of a run on the same seeds, in parallel on Ray, resumably: config → plan →
schedule → rounds (play ⇄ results) → stats → report, each room entered in its turn
(``tests/sweep_module_walk_test.py`` checks the walk).

``plan_sweep`` decides what is played (``libs.evaluation.plan.sweep_plan``: the checkpoints with their
cards and decided scenes, their perturbation arms, the tasks); the schedule decides in which rounds
(``libs.evaluation.plan.schedule``: all at once, or until a sequential test decides); each round runs on the
Ray pool (``libs.evaluation.play.ray_pool``: one ``EpisodeWorker`` per worker) or, with ``serial=True``, on
one worker in this process (debuggers, benchmarks' baseline). Every finished episode is written to the
results store before the next is handed out, so killing the sweep loses at most the episodes in flight,
and running the same command again only runs what is missing. The report is the ranked table of the
checkpoints plus the sections in ``SWEEP_SECTIONS``, in that order; each section is built in the room its
``room`` names, in the flow's order (``SECTION_ROOMS``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from libs.evaluation.plan.schedule import Schedule, schedule_for
from libs.evaluation.plan.sweep_config import SweepConfig as SweepConfig
from libs.evaluation.plan.sweep_plan import SweepPlan, plan_sweep, training_block_positions
from libs.evaluation.plan.sweep_plan import grid_points as grid_points

# EnvSettings, EpisodeTask, EpisodeWorker, SweepError, SweepConfig, grid_points and connect_ray are part of
# this module's interface (the CLI, tests and benchmarks import them from here).
from libs.evaluation.plan.tasks import EnvSettings as EnvSettings
from libs.evaluation.plan.tasks import EpisodeTask
from libs.evaluation.plan.tasks import SweepError as SweepError
from libs.evaluation.play.episode_worker import EpisodeWorker, lockstep_batches
from libs.evaluation.play.input_check import INPUT_DRIFT_SECTION, INPUT_DRIFT_TITLE, input_drift_section
from libs.evaluation.play.ray_pool import connect_ray as connect_ray
from libs.evaluation.play.ray_pool import run_on_ray, start_workers, stop_workers
from libs.evaluation.report.failure_causes import failure_section
from libs.evaluation.report.sweep_report import Report, write_report
from libs.evaluation.results.episode_record import EpisodeRecord
from libs.evaluation.results.provenance import write_provenance
from libs.evaluation.results.report_section import ReportSection
from libs.evaluation.results.store import STORE_FILE_NAME, ResultsStore
from libs.evaluation.stats.perturbation_effects import arm_differences, arms_section
from libs.report_html.plan import write_sweep_plan
from libs.report_html.sweep_page import write_report_html


@dataclass
class SweepResult:
    out_dir: Path
    report: Report
    ran: int
    skipped: int
    policy_loads: int | None = None
    #: --until-decided: the report's "sequential" data (verdict, episodes run and saved); --select-best: its
    #: "select_best" data (verdict, chosen, drops, episodes run against the fixed design).
    decision: dict[str, Any] | None = None


@dataclass
class SweepOutcome:
    """What the report sections are drawn from: the sweep's config, plan, schedule and stored episodes."""

    config: SweepConfig
    plan: SweepPlan
    schedule: Schedule
    records: list[EpisodeRecord]
    out: Path

    @property
    def control_records(self) -> list[EpisodeRecord]:
        """The checkpoints' own episodes (the arms' left out): what the main table ranks."""
        return [record for record in self.records if record.is_control]


def evaluate(
    config: SweepConfig,
    out_dir: str | Path,
    argv: Sequence[str] | None = None,
    on_record: Callable[[EpisodeRecord], None] | None = None,
) -> SweepResult:
    """Run what is missing of the sweep into ``out_dir`` and (re)write its report."""
    out = Path(out_dir)
    settings = config.settings()
    # The plan: every target (card read, scene decided), task and training block position, once.
    plan = plan_sweep(config)
    training_xy = training_block_positions(plan, config.training_data) if plan.grid is not None else None
    schedule = schedule_for(plan, config.until_decided, config.serial, config.workers, config.select_best)
    # The rounds: the results folder opened (a folder holding another sweep is refused before anything is
    # written into it) with what produced it (command, versions, the scenes evaluated in) and what was asked
    # (the pages show done of planned), the schedule's rounds played into the store, then what they concluded.
    with ResultsStore(out / STORE_FILE_NAME) as store:
        store.bind_settings(settings)
        write_provenance(out, argv, plan.evaluated_scenes)
        write_sweep_plan(out, plan.tasks)
        ran, loads = _play(schedule, config, store, on_record)
        records = [record for record in store.records() if record.key in plan.keys]
    episodes = schedule.episodes_per_checkpoint(records)
    outcome = SweepOutcome(config, plan, schedule, records, out)
    built = {room: _sections_of(room, outcome) for room in SECTION_ROOMS}
    sections = [
        section for source in SWEEP_SECTIONS if (section := built[source.room][source.name]) is not None
    ]
    report = write_report(
        outcome.control_records, out, settings | {"episodes": episodes}, plan.grid, training_xy, sections
    )
    write_report_html(out)  # report.html beside report.md, drawn from the folder's files (libs.report_html)
    decided = ("sequential", "select_best")
    decision = next((section.data for section in sections if section.key in decided), None)
    return SweepResult(out, report, ran, len(records) - ran, loads, decision)


# --------------------------------------------------------------------------- report sections


def _failure_causes(outcome: SweepOutcome) -> ReportSection | None:
    return failure_section(outcome.control_records)


def _perturbation_arms(outcome: SweepOutcome) -> ReportSection | None:
    if not outcome.plan.arms:
        return None
    return arms_section(arm_differences(outcome.records, outcome.plan.controls, outcome.plan.arms))


def _sequential_decision(outcome: SweepOutcome) -> ReportSection | None:
    return outcome.schedule.section(outcome.records)


def _input_drift(outcome: SweepOutcome) -> ReportSection | None:
    section = input_drift_section(outcome.plan.targets, outcome.config.env)
    return None if section is None else ReportSection(INPUT_DRIFT_SECTION, INPUT_DRIFT_TITLE, *section)


def _whisker_diagnostics(outcome: SweepOutcome) -> ReportSection | None:
    config = outcome.config
    if config.whiskers <= 0:
        return None
    from libs.evaluation.play.whiskers import record_sweep_whiskers

    _, section = record_sweep_whiskers(
        outcome.plan.tasks,
        config.whiskers,
        EpisodeWorker(config.env),
        outcome.out,
        outcomes={record.key: record.outcome for record in outcome.records},
        mode=config.whiskers_mode,
        progress=config.progress,
    )
    return section


@dataclass(frozen=True)
class SweepSection:
    """A report section after the ranked table: ``build`` returns None when it has nothing to say; ``room``
    is where the flow builds it (``SECTION_ROOMS``)."""

    build: Callable[[SweepOutcome], ReportSection | None]
    room: str

    @property
    def name(self) -> str:
        return self.build.__name__


#: The rooms that build sections, in the flow's order: "rounds" right after the last round (the schedule's
#: verdict, and the sections that play episodes of their own: input-drift reference episodes, whiskers),
#: then "stats", then "report".
SECTION_ROOMS = ("rounds", "stats", "report")

#: The report's sections after the ranked table, in the order the report shows them.
SWEEP_SECTIONS: list[SweepSection] = [
    SweepSection(_input_drift, "rounds"),
    SweepSection(_failure_causes, "report"),
    SweepSection(_perturbation_arms, "stats"),
    SweepSection(_sequential_decision, "rounds"),
    SweepSection(_whisker_diagnostics, "rounds"),
]


def _sections_of(room: str, outcome: SweepOutcome) -> dict[str, ReportSection | None]:
    """The sections ``room`` builds, by name."""
    return {source.name: source.build(outcome) for source in SWEEP_SECTIONS if source.room == room}


# --------------------------------------------------------------------------- playing the rounds


def _play(
    schedule: Schedule,
    config: SweepConfig,
    store: ResultsStore,
    on_record: Callable[[EpisodeRecord], None] | None,
) -> tuple[int, int | None]:
    """Every round of ``schedule``, serially or on Ray (workers, and the policies they hold, live across
    rounds): (episodes stored by this run, policy loads)."""
    keys = schedule.plan.keys
    if keys <= store.done_keys():
        return 0, None
    # Ray starts before the progress bar so its start-up does not distort the rate and ETA.
    started_ray = connect_ray(config.ray_address, config.workers) if not config.serial else False
    try:
        with _recording(store, config, on_record, schedule.label, len(keys)) as (bar, stored, record_done):
            if config.serial:
                worker = EpisodeWorker(config.env, keep_policies=schedule.keep_policies)
                for round_tasks in _counted(schedule.rounds(store), bar, store, keys):
                    _run_batches(worker, round_tasks, config, record_done)
                return stored.count, worker.policy_loads
            actors: list[Any] = []
            loads = None
            try:
                for round_tasks in _counted(schedule.rounds(store), bar, store, keys):
                    if not actors:
                        size = schedule.round_size(round_tasks)
                        actors = start_workers(config.env, config.workers, size, schedule.keep_policies)
                    lockstep = config.env.lockstep_envs
                    loads = run_on_ray(round_tasks, actors, record_done, config.episode_timeout_s, lockstep)
            finally:
                stop_workers(actors)
            return stored.count, loads
    finally:
        if started_ray:
            import ray

            ray.shutdown()


def _counted(
    rounds: Iterator[list[EpisodeTask]], bar: tqdm, store: ResultsStore, keys: frozenset[tuple[str, str, int]]
) -> Iterator[list[EpisodeTask]]:
    """The rounds, with the progress bar set to the planned episodes stored before each."""
    for round_tasks in rounds:
        bar.n = len(keys & store.done_keys())
        bar.refresh()
        yield round_tasks


@dataclass
class _Stored:
    count: int = 0


@contextlib.contextmanager
def _recording(
    store: ResultsStore,
    config: SweepConfig,
    on_record: Callable[[EpisodeRecord], None] | None,
    desc: str,
    total: int,
) -> Iterator[tuple[tqdm, _Stored, Callable[[EpisodeRecord], None]]]:
    """A progress bar and the callback every finished episode goes through: stored at once (a kill after
    the store write loses nothing), counted, then handed to ``on_record``."""
    stored = _Stored()
    with tqdm(total=total, unit="episode", desc=desc, disable=not config.progress, dynamic_ncols=True) as bar:

        def record_done(record: EpisodeRecord) -> None:
            store.append(record)
            bar.update(1)
            stored.count += 1
            if on_record is not None:
                on_record(record)

        yield bar, stored, record_done


def _run_batches(
    worker: EpisodeWorker,
    tasks: Sequence[EpisodeTask],
    config: SweepConfig,
    record_done: Callable[[EpisodeRecord], None],
) -> None:
    """In this process: each batch of ``--lockstep-envs`` episodes of one checkpoint together."""
    for batch in lockstep_batches(tasks, config.env.lockstep_envs):
        for record in worker.run_batch(batch):
            record_done(record)
