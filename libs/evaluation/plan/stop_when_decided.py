"""``sweep --until-decided``: run episodes in rounds and stop once the sequential test decides.

The sweep plans the whole budget (``--max-episodes`` seeds per checkpoint) and runs it a round at a time
(``round_episodes`` seeds for every checkpoint, spread over the Ray workers); after each round the test of
``libs.evaluation.stats.anytime_tests`` is walked along the seeds in seed order — the order fixed before any
episode ran — up to the first seed some checkpoint has not finished. The threshold is calibrated for a look
after every seed, so looking once per round (or resuming a killed sweep and looking again) keeps the error
rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from libs.config_flags import flag
from libs.evaluation.results.episode_record import EpisodeRecord
from libs.evaluation.results.report_section import ReportSection
from libs.evaluation.stats.anytime_tests import (
    MixtureSPRT,
    SequentialDecision,
    paired_sequential,
    target_sequential,
)
from libs.evaluation.stats.sample_sizes import (
    PairRates,
    PlanError,
    binomial_test_power,
    connor_pairs,
    mcnemar_power,
    normal_target_episodes,
    smallest_n,
)

#: The power the report's fixed-n comparison is sized for.
FIXED_DESIGN_POWER = 0.9


@dataclass(frozen=True)
class UntilDecided:
    """The stopping rule: level ``alpha``, at most ``max_episodes`` seeds per checkpoint, and either two
    checkpoints compared on paired seeds or one against ``target_rate``."""

    max_episodes: int = field(metadata=flag("budget per checkpoint"))
    alpha: float = field(default=0.05, metadata=flag("error rate of the decision (0.05)"))
    target_rate: float | None = field(
        default=None, metadata=flag("test one checkpoint against this success rate")
    )
    #: Seeds per checkpoint per round (None: one per Ray worker).
    round_episodes: int | None = field(
        default=None,
        metadata=flag("episodes per checkpoint per round (default: workers)", name="--round", metavar="N"),
    )

    def __post_init__(self) -> None:
        # Validates alpha, the budget and the target rate with one-line messages.
        null_rate = self.target_rate if self.target_rate is not None else 0.5
        MixtureSPRT(null_rate, self.alpha, self.max_episodes)
        if self.round_episodes is not None and self.round_episodes < 1:
            raise PlanError(f"--round {self.round_episodes} must be at least 1 episode per checkpoint")

    @property
    def checkpoints_needed(self) -> int:
        return 1 if self.target_rate is not None else 2

    def settings(self) -> dict[str, Any]:
        """What a resumed sweep must repeat (the threshold depends on alpha and the budget)."""
        return {"alpha": self.alpha, "max_episodes": self.max_episodes, "target_rate": self.target_rate}

    def decide(
        self, records: Sequence[EpisodeRecord], checkpoint_ids: Sequence[str], seeds: Sequence[int]
    ) -> SequentialDecision:
        """The test walked along ``seeds`` (in order) up to the first seed some checkpoint has not run (its
        control: the perturbation arms ride along, undecided on)."""
        by_key = {(record.checkpoint_id, record.seed): record for record in records if record.is_control}
        prefix: list[int] = []
        for seed in seeds:
            if not all((checkpoint, seed) in by_key for checkpoint in checkpoint_ids):
                break
            prefix.append(seed)
        first = checkpoint_ids[0]
        first_successes = [by_key[(first, seed)].success for seed in prefix]
        if self.target_rate is not None:
            return target_sequential(first, first_successes, self.target_rate, self.alpha, self.max_episodes)
        second = checkpoint_ids[1]
        return paired_sequential(
            first,
            first_successes,
            second,
            [by_key[(second, seed)].success for seed in prefix],
            self.alpha,
            self.max_episodes,
        )


def fixed_design_episodes(
    rule: UntilDecided, records: Sequence[EpisodeRecord], checkpoint_ids: Sequence[str]
) -> int | None:
    """Episodes per checkpoint a fixed-n exact test needs for FIXED_DESIGN_POWER at the rates this sweep
    observed (None when they show no difference to size it for)."""
    by_checkpoint: dict[str, dict[int, bool]] = {}
    for record in (record for record in records if record.is_control):
        by_checkpoint.setdefault(record.checkpoint_id, {})[record.seed] = record.success
    try:
        if rule.target_rate is not None:
            outcomes = list(by_checkpoint.get(checkpoint_ids[0], {}).values())
            if not outcomes:
                return None
            rate = sum(outcomes) / len(outcomes)
            if rate == rule.target_rate:
                return None
            guess = normal_target_episodes(rate, rule.target_rate, FIXED_DESIGN_POWER, rule.alpha)
            return smallest_n(
                lambda n: binomial_test_power(n, rate, rule.target_rate or 0.0, rule.alpha),
                FIXED_DESIGN_POWER,
                guess,
            )
        first = by_checkpoint.get(checkpoint_ids[0], {})
        second = by_checkpoint.get(checkpoint_ids[1], {})
        shared = sorted(first.keys() & second.keys())
        if not shared:
            return None
        n = len(shared)
        rates = PairRates(
            sum(first[s] for s in shared) / n,
            sum(second[s] for s in shared) / n,
            sum(first[s] and not second[s] for s in shared) / n,
            sum(second[s] and not first[s] for s in shared) / n,
        )
        if rates.difference == 0:
            return None
        guess = connor_pairs(rates, FIXED_DESIGN_POWER, rule.alpha)
        return smallest_n(lambda n: mcnemar_power(n, rates, rule.alpha), FIXED_DESIGN_POWER, guess)
    except PlanError:
        return None


def decision_section(
    decision: SequentialDecision, spent: int, fixed_episodes: int | None, round_episodes: int
) -> ReportSection:
    """The report's "Sequential decision" section: the verdict, episodes spent and saved."""
    budget = decision.max_episodes or spent
    rows = [
        ("budget (--max-episodes)", str(budget)),
        ("rounds of", f"{round_episodes} episodes per checkpoint"),
        (
            "decided at episode",
            "–" if decision.decided_at_episode is None else str(decision.decided_at_episode),
        ),
        ("episodes run (the last round finishes)", str(spent)),
        ("saved against the budget", f"{budget - spent} ({(budget - spent) / budget:.0%})"),
    ]
    if fixed_episodes is not None:
        rows.append(
            (
                f"fixed-n exact test for {FIXED_DESIGN_POWER:.0%} power at the observed rates",
                f"{fixed_episodes} (this run spent {spent}: {fixed_episodes - spent:+d} episodes saved)",
            )
        )
    table = ["| | episodes per checkpoint |", "|---|---|", *(f"| {name} | {value} |" for name, value in rows)]
    markdown = "\n".join([f"**{_verdict_words(decision)}.** {decision.wording}", "", *table])
    data = decision.to_dict() | {
        "budget": budget,
        "episodes_run": spent,
        "saved_against_budget": budget - spent,
        "round_episodes": round_episodes,
        "fixed_design_power": FIXED_DESIGN_POWER,
        "fixed_design_episodes": fixed_episodes,
    }
    return ReportSection("sequential", "Sequential decision", markdown, data)


def _verdict_words(decision: SequentialDecision) -> str:
    return {
        "first_better": f"{decision.first} is better than {decision.second}",
        "second_better": f"{decision.second} is better than {decision.first}",
        "above_target": f"{decision.first} is above the target rate",
        "below_target": f"{decision.first} is below the target rate",
    }.get(decision.verdict, "Undecided within the budget")
