"""How a sweep's planned tasks are played: rounds of tasks, until none is left or a test decides.

``FixedSchedule`` plays every task not yet stored in one round. ``SequentialSchedule`` (``--until-decided``)
plays ``round_episodes`` seeds of every target per round — the checkpoints and their perturbation arms
together, matched per seed — and after each round walks the anytime-valid test along the seeds stored so
far (``libs.evaluation.plan.stop_when_decided``), stopping once it decides or the budget is spent. Either way
every finished episode is stored before the next round is chosen, so a killed sweep resumes where it stopped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from libs.evaluation.plan.stop_when_decided import UntilDecided, decision_section, fixed_design_episodes
from libs.evaluation.plan.sweep_plan import SweepPlan
from libs.evaluation.plan.tasks import EpisodeTask
from libs.evaluation.results.episode_record import EpisodeRecord
from libs.evaluation.results.report_section import ReportSection
from libs.evaluation.results.store import ResultsStore


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
        """Seeds every compared checkpoint has run."""
        return min(len({r.seed for r in records if r.checkpoint_id == i}) for i in self.plan.controls)

    def section(self, records: Sequence[EpisodeRecord]) -> ReportSection:
        ids = self.plan.controls
        decision = self.rule.decide(records, ids, self.plan.seeds)
        fixed = fixed_design_episodes(self.rule, records, ids)
        return decision_section(decision, self.spent(records), fixed, self.round_episodes)

    def episodes_per_checkpoint(self, records: Sequence[EpisodeRecord]) -> int:
        return self.spent(records)


Schedule = FixedSchedule | SequentialSchedule


def schedule_for(plan: SweepPlan, rule: UntilDecided | None, serial: bool, workers: int | None) -> Schedule:
    """Fixed without a stopping rule; else rounds of ``rule.round_episodes`` seeds (default: one per worker,
    one when serial)."""
    if rule is None:
        return FixedSchedule(plan)
    per_round = rule.round_episodes
    if per_round is None:
        per_round = 1 if serial else max(1, workers or os.cpu_count() or 1)
    return SequentialSchedule(plan, rule, per_round)
