"""``sweep --select-best``: play K checkpoints on shared seeds in rounds, drop each as soon as another is
shown better, and stop once the leader is shown within ``--epsilon`` of every checkpoint left (or one is left,
or ``--max-episodes`` seeds are spent); with probability ≥ 1 − ``--delta`` the checkpoint named is within ε
of the best (``libs.evaluation.stats.best_of_k``).

The selection is walked along the seeds in seed order from the stored episodes (a look after every seed,
which the bounds allow), so it does not depend on how the seeds were grouped into rounds: a killed sweep
recomputes the same state from its store and goes on from the first seed a checkpoint left has not played.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from libs.config_flags import flag
from libs.evaluation.results.episode_record import EpisodeRecord
from libs.evaluation.results.report_section import ReportSection
from libs.evaluation.stats.best_of_k import (
    BUDGET,
    ONE_LEFT,
    RUNNING,
    WITHIN_EPSILON,
    Selection,
    SelectionError,
    check_selection,
    select_best,
)

#: The largest budget per checkpoint (the walk's tables grow as its cube).
MAX_SELECTION_EPISODES = 2_000


@dataclass(frozen=True)
class SelectBest:
    """The selection rule: within ``epsilon`` of the best with probability ≥ 1 − ``delta``, at most
    ``max_episodes`` seeds per checkpoint (``--max-episodes``, shared with --until-decided, as is
    ``--round``)."""

    max_episodes: int
    epsilon: float = field(
        default=0.05,
        metadata=flag("--select-best: name a checkpoint within this of the best (0.05 = 5 points)"),
    )
    delta: float = field(
        default=0.05, metadata=flag("--select-best: chance the one named is more than --epsilon worse (0.05)")
    )
    #: Seeds per checkpoint per round (None: enough to give every Ray worker an episode).
    round_episodes: int | None = None

    def __post_init__(self) -> None:
        check_selection(self.epsilon, self.delta)
        if not 1 <= self.max_episodes <= MAX_SELECTION_EPISODES:
            raise SelectionError(
                f"--max-episodes {self.max_episodes} must be between 1 and {MAX_SELECTION_EPISODES} "
                "episodes per checkpoint"
            )
        if self.round_episodes is not None and self.round_episodes < 1:
            raise SelectionError(f"--round {self.round_episodes} must be at least 1 episode per checkpoint")

    def settings(self) -> dict[str, Any]:
        """What a resumed sweep must repeat (the bounds depend on all three)."""
        return {"epsilon": self.epsilon, "delta": self.delta, "max_episodes": self.max_episodes}

    def select(
        self, records: Sequence[EpisodeRecord], checkpoint_ids: Sequence[str], seeds: Sequence[int]
    ) -> Selection:
        """The selection walked along ``seeds`` over the stored episodes of ``checkpoint_ids``."""
        # The checkpoints' own episodes: perturbation arms ride along, the selection is not made on them.
        by_key = {
            (record.checkpoint_id, record.seed): record.success for record in records if record.is_control
        }
        outcomes = {name: [by_key.get((name, seed)) for seed in seeds] for name in checkpoint_ids}
        return select_best(list(checkpoint_ids), outcomes, self.epsilon, self.delta, self.max_episodes)


def check_select_best(checkpoint_ids: Sequence[str], grid: bool, until_decided: bool) -> None:
    """Bad combinations, each one line."""
    if until_decided:
        raise SelectionError("--select-best and --until-decided are two stopping rules: pick one")
    if grid:
        raise SelectionError("--select-best runs random seeds in rounds: drop --grid (or --select-best)")
    if len(checkpoint_ids) < 2:
        raise SelectionError(
            f"--select-best picks among several checkpoints, but the policies name {len(checkpoint_ids)}: "
            "point --policy at a run (every checkpoint) or add --compare-to"
        )
    if len(set(checkpoint_ids)) != len(checkpoint_ids):
        raise SelectionError(
            "--policy and --compare-to name the same checkpoint: select among different ones"
        )


def replayed_rounds(selection: Selection, seeds_per_round: Callable[[int], int]) -> list[int]:
    """The seed count at the end of each round as an uninterrupted sweep plays them (the round size follows
    how many checkpoints are left)."""
    ends, at = [], 0
    while at < selection.walked:
        left = sum(1 for name in selection.checkpoints if selection.seeds_walked[name] > at)
        at = min(selection.max_episodes, at + seeds_per_round(max(1, left)))
        ends.append(at)
    return ends


def round_of(episodes: int, round_ends: Sequence[int]) -> int:
    """The (1-based) round whose episodes include seed number ``episodes``."""
    return next((index + 1 for index, end in enumerate(round_ends) if episodes <= end), len(round_ends))


def selection_section(
    selection: Selection, spent: int, arm_episodes: int, round_ends: Sequence[int]
) -> ReportSection:
    """The report's "Best-checkpoint selection" section: the verdict, each checkpoint's fate, episodes."""
    fixed = len(selection.checkpoints) * selection.max_episodes
    rows = [_checkpoint_row(selection, name, round_ends) for name in _ranked(selection)]
    table = [
        "| checkpoint | successes / seeds | outcome | round | bound |",
        "|---|---|---|---|---|",
        *rows,
    ]
    saved = fixed - spent
    episodes = (
        f"Episodes: {spent} played by the checkpoints ({len(round_ends)} rounds) against {fixed} for the "
        "fixed "
        f"design ({len(selection.checkpoints)} checkpoints × {selection.max_episodes}): {saved} saved "
        f"({saved / fixed:.0%})"
        + (f"; the perturbation arms rode along on {arm_episodes} more." if arm_episodes else ".")
    )
    markdown = "\n".join([f"**{_headline(selection)}** {_guarantee(selection)}", "", *table, "", episodes])
    data = selection.to_dict() | {
        "question": "select_best",
        "episodes_run": spent,
        "arm_episodes": arm_episodes,
        "fixed_design_episodes": fixed,
        "saved_against_fixed": saved,
        "rounds": len(round_ends),
        "drop_rounds": {drop.checkpoint: round_of(drop.episodes, round_ends) for drop in selection.drops},
    }
    return ReportSection("select_best", "Best-checkpoint selection", markdown, data)


def _ranked(selection: Selection) -> list[str]:
    """The one named first, then those left, then the dropped from the last dropped to the first."""
    dropped = [drop.checkpoint for drop in reversed(selection.drops)]
    left = [name for name in selection.remaining if name != selection.chosen]
    return [selection.chosen, *left, *dropped]


def _checkpoint_row(selection: Selection, name: str, round_ends: Sequence[int]) -> str:
    seeds = selection.seeds_walked[name]
    counts = f"{selection.successes[name]} / {seeds}"
    drop = next((drop for drop in selection.drops if drop.checkpoint == name), None)
    if drop is not None:
        bound = f"p({drop.by}) − p({name}) ≥ {drop.lower_bound:+.3f} (e-value {drop.e_value:.3g})"
        dropped_in = round_of(drop.episodes, round_ends)
        return f"| {name} | {counts} | dropped: {drop.by} is better | {dropped_in} | {bound} |"
    if name == selection.chosen:
        outcome = "selected" if selection.finished else "leading"
        return f"| **{name}** | {counts} | {outcome} | – | – |"
    gap = selection.gap_upper_bounds.get(name)
    bound = "–" if gap is None else f"p({name}) − p({selection.chosen}) ≤ {gap:+.3f}"
    return f"| {name} | {counts} | left | – | {bound} |"


def _headline(selection: Selection) -> str:
    chosen, walked, left = selection.chosen, selection.walked, len(selection.remaining)
    return {
        ONE_LEFT: f"{chosen} is the best: every other checkpoint was shown worse ({walked} seeds).",
        WITHIN_EPSILON: f"{chosen} is within {selection.epsilon:g} of the best ({walked} seeds).",
        BUDGET: f"Budget spent ({walked} seeds): {chosen} is the best so far of the {left} left.",
        RUNNING: f"Not finished ({walked} seeds walked): {chosen} leads.",
    }[selection.verdict]


def _guarantee(selection: Selection) -> str:
    confidence = f"{1 - selection.delta:.0%}"
    level = f"each pair bound at level {selection.pair_level:.3g} = δ/(K − 1), anytime-valid"
    if selection.decided:
        return (
            f"With probability ≥ {confidence} the checkpoint named is within {selection.epsilon:g} of the "
            "best "
            f"success rate ({level})."
        )
    left = ", ".join(selection.remaining)
    return (
        f"Not decided within ε = {selection.epsilon:g}: with probability ≥ {confidence} the best is among "
        "the "
        f"checkpoints left ({left}); the one named is the best on the seeds played, without the ε guarantee "
        f"({level}). Raise --max-episodes or --epsilon to decide."
    )
