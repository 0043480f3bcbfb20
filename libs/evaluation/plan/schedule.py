"""How a sweep's planned tasks are played: rounds of tasks, until none is left or a test decides.

``FixedSchedule`` plays every task not yet stored in one round. ``SequentialSchedule`` (``--until-decided``)
plays ``round_episodes`` seeds of every target per round — the checkpoints and their perturbation arms
together, matched per seed — and after each round walks the anytime-valid test along the seeds stored so
far (``libs.evaluation.plan.stop_when_decided``), stopping once it decides or the budget is spent. Either way
every finished episode is stored before the next round is chosen, so a killed sweep resumes where it stopped.
``SelectBestSchedule`` (``--select-best``) plays the checkpoints still in the running (and their arms) on the
next seeds, enough per round to give every worker an episode, until the best-of-K selection
(``libs.evaluation.plan.select_best``) names one or the budget is spent.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from libs.evaluation.plan.select_best import SelectBest, replayed_rounds, selection_section
from libs.evaluation.plan.stop_when_decided import UntilDecided, decision_section, fixed_design_episodes
from libs.evaluation.plan.sweep_plan import SweepPlan
from libs.evaluation.plan.tasks import EpisodeTask
from libs.evaluation.results.episode_record import EpisodeRecord
from libs.evaluation.results.report_section import ReportSection
from libs.evaluation.results.store import ResultsStore
from libs.evaluation.stats.best_of_k import Selection


@dataclass
class FixedSchedule:
    """Every planned task, in one round."""

    plan: SweepPlan
    label: str = "evaluating"

    @property
    def keep_policies(self) -> int:
        return 1

    def round_size(self, first_round: Sequence[EpisodeTask]) -> int:
        return len(first_round)

    def rounds(self, store: ResultsStore) -> Iterator[list[EpisodeTask]]:
        done = store.done_keys()
        todo = [task for task in self.plan.tasks if task.key not in done]
        if todo:
            yield todo

    def section(self, records: Sequence[EpisodeRecord]) -> ReportSection | None:
        return None

    def episodes_per_checkpoint(self, records: Sequence[EpisodeRecord]) -> int:
        return self.plan.episodes


@dataclass
class SequentialSchedule:
    """Rounds of ``round_episodes`` seeds until ``rule`` decides between the plan's checkpoints."""

    plan: SweepPlan
    rule: UntilDecided
    round_episodes: int
    label: str = "until decided"

    @property
    def keep_policies(self) -> int:
        # A worker alternates the compared checkpoints (an arm shares its checkpoint's policy).
        return len(self.plan.controls)

    def round_size(self, first_round: Sequence[EpisodeTask]) -> int:
        return self.round_episodes * len(self.plan.targets)

    def rounds(self, store: ResultsStore) -> Iterator[list[EpisodeTask]]:
        seeds = self.plan.seeds
        while True:
            done = store.done_keys()
            decision = self.rule.decide(store.records(), self.plan.controls, seeds)
            missing_seeds = {task.seed for task in self.plan.tasks if task.key not in done}
            missing = [seed for seed in seeds if seed in missing_seeds]
            if decision.decided or not missing:
                return
            chosen = set(missing[: self.round_episodes])
            yield [task for task in self.plan.tasks if task.seed in chosen and task.key not in done]

    def spent(self, records: Sequence[EpisodeRecord]) -> int:
        """Seeds every compared checkpoint has run (its control: the arms ride along)."""
        return min(
            len({r.seed for r in records if r.checkpoint_id == i and r.is_control})
            for i in self.plan.controls
        )

    def section(self, records: Sequence[EpisodeRecord]) -> ReportSection:
        ids = self.plan.controls
        decision = self.rule.decide(records, ids, self.plan.seeds)
        fixed = fixed_design_episodes(self.rule, records, ids)
        return decision_section(decision, self.spent(records), fixed, self.round_episodes)

    def episodes_per_checkpoint(self, records: Sequence[EpisodeRecord]) -> int:
        return self.spent(records)


@dataclass
class SelectBestSchedule:
    """Rounds of the next seeds for the checkpoints ``rule`` has not dropped, until it names the best."""

    plan: SweepPlan
    rule: SelectBest
    #: Episodes a round should hold: one per worker (1 when serial).
    workers: int
    label: str = "selecting the best"

    @property
    def keep_policies(self) -> int:
        # Every round visits every checkpoint left (an arm shares its checkpoint's policy).
        return len(self.plan.controls)

    def round_size(self, first_round: Sequence[EpisodeTask]) -> int:
        # A resumed sweep's first round may only finish a killed one: the workers are sized for a full one.
        full = self.seeds_per_round(len(self.plan.controls)) * len(self.plan.targets)
        return max(len(first_round), full)

    def seeds_per_round(self, left: int) -> int:
        """Seeds per checkpoint in a round with ``left`` checkpoints (and their arms) still playing."""
        if self.rule.round_episodes is not None:
            return self.rule.round_episodes
        return max(1, math.ceil(self.workers / (left * (1 + len(self.plan.arms)))))

    def select(self, records: Sequence[EpisodeRecord]) -> Selection:
        return self.rule.select(records, self.plan.controls, self.plan.seeds)

    def rounds(self, store: ResultsStore) -> Iterator[list[EpisodeTask]]:
        while True:
            selection = self.select(store.records())
            if selection.finished:
                return
            todo = self._next_round(selection, store.done_keys())
            if not todo:
                return
            yield todo

    def _next_round(self, selection: Selection, done: set[tuple[str, str, int]]) -> list[EpisodeTask]:
        """The missing tasks up to each checkpoint's horizon, its arms' with it: the next round's seeds for a
        checkpoint left, its seeds up to the drop for one dropped (so its arms stay matched)."""
        reach = selection.walked + self.seeds_per_round(len(selection.remaining))
        horizon = {}
        for control in self.plan.controls:
            seeds = reach if control in selection.remaining else selection.seeds_walked[control]
            horizon[control] = set(self.plan.seeds[:seeds])
        return [
            task
            for task in self.plan.tasks
            if task.seed in horizon[task.target.checkpoint_id] and task.key not in done
        ]

    def spent(self, records: Sequence[EpisodeRecord]) -> tuple[int, int]:
        """(episodes the checkpoints played, episodes their arms played)."""
        played = sum(record.is_control for record in records)
        return played, len(records) - played

    def section(self, records: Sequence[EpisodeRecord]) -> ReportSection:
        selection = self.select(records)
        played, arms = self.spent(records)
        return selection_section(selection, played, arms, replayed_rounds(selection, self.seeds_per_round))

    def episodes_per_checkpoint(self, records: Sequence[EpisodeRecord]) -> int:
        """The most seeds any checkpoint played (the ones left, with the last round)."""
        counts = [
            sum(record.checkpoint_id == control and record.is_control for record in records)
            for control in self.plan.controls
        ]
        return max(counts, default=0)


Schedule = FixedSchedule | SequentialSchedule | SelectBestSchedule


def schedule_for(
    plan: SweepPlan,
    rule: UntilDecided | None,
    serial: bool,
    workers: int | None,
    select: SelectBest | None = None,
) -> Schedule:
    """Fixed without a stopping rule; else rounds of ``rule.round_episodes`` seeds (default: one per worker,
    one when serial); with ``select``, rounds of the checkpoints still in the running."""
    if select is not None:
        return SelectBestSchedule(plan, select, 1 if serial else max(1, workers or os.cpu_count() or 1))
    if rule is None:
        return FixedSchedule(plan)
    per_round = rule.round_episodes
    if per_round is None:
        per_round = 1 if serial else max(1, workers or os.cpu_count() or 1)
    return SequentialSchedule(plan, rule, per_round)
