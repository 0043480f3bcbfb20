"""Per-checkpoint figures with honest uncertainty, and paired comparisons on shared seeds."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from libs.evaluation.results.episode_record import EpisodeRecord

# The pages compute these too and sit below this layer (they read only a results folder): one definition.
from libs.report_html.stats import Z_95, exact_mcnemar_p, wilson_interval

#: Outcome names in report order (libs.sim.outcome.Outcome's values).
OUTCOME_ORDER: tuple[str, ...] = (
    "success",
    "never_picked_up",
    "dropped_during_transport",
    "missed_goal",
    "timeout",
    "contract_violation",
)
#: Progress milestones in order (libs.sim.outcome.PROGRESS_STAGES); progress = stage index / 5.
PROGRESS_STAGES: tuple[str, ...] = ("none", "approached", "grasped", "lifted", "over_bowl", "placed")


def mean_interval(values: Sequence[float], z: float = Z_95) -> tuple[float, float]:
    """95% normal-approximation interval of the mean of scores in [0, 1], clipped to [0, 1]; (0, 1) for
    fewer than two values."""
    if len(values) < 2:
        return (0.0, 1.0)
    array = np.asarray(values, dtype=np.float64)
    half = z * float(array.std(ddof=1)) / math.sqrt(array.size)
    centre = float(array.mean())
    return (max(0.0, centre - half), min(1.0, centre + half))


def progress_stage_name(progress: float) -> str:
    return PROGRESS_STAGES[round(progress * (len(PROGRESS_STAGES) - 1))]


@dataclass
class CheckpointSummary:
    checkpoint_id: str
    step: int | None
    episodes: int
    successes: int
    success_rate: float
    success_ci95: tuple[float, float]
    picks: int
    pick_rate: float
    drops: int
    #: drops / picks (None with no picks).
    drop_rate: float | None
    outcome_counts: dict[str, int]
    mean_steps_of_successes: float | None
    max_block_height_m_mean: float
    max_block_height_m_max: float
    action_space: str
    #: ee policies only: IK failures per executed step, and the mean IK error.
    ik_failure_rate: float | None
    ik_error_mm_mean: float | None
    latency_mean_ms: float
    #: Median over episodes of each episode's 95th-percentile inference latency.
    latency_p95_ms: float
    wall_time_s_mean: float
    seeds: list[int] = field(default_factory=list)
    #: Mean progress score (None when no episode carries one) with its 95% interval, and episodes per
    #: furthest milestone.
    progress_mean: float | None = None
    progress_ci95: tuple[float, float] | None = None
    progress_stage_counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(records: Sequence[EpisodeRecord]) -> CheckpointSummary:
    """Figures for one checkpoint's episodes."""
    if not records:
        raise ValueError("summarize() needs at least one episode")
    first = records[0]
    n = len(records)
    successes = sum(record.success for record in records)
    picks = sum(record.picked for record in records)
    drops = sum(record.outcome == "dropped_during_transport" for record in records)
    counts = Counter(record.outcome for record in records)
    outcome_counts = {name: counts.get(name, 0) for name in OUTCOME_ORDER}
    outcome_counts.update({name: count for name, count in counts.items() if name not in outcome_counts})
    success_steps = [record.steps for record in records if record.success]
    heights = np.array([record.max_block_height_m for record in records])
    inferences = np.array([record.inferences for record in records], dtype=np.float64)
    latency_means = np.array([record.latency_mean_ms for record in records])
    ee = first.action_space == "ee"
    total_steps = sum(record.steps for record in records)
    ik_errors = [record.ik_error_mm_mean for record in records if record.ik_error_mm_mean is not None]
    progress = [record.progress for record in records if record.progress is not None]
    return CheckpointSummary(
        checkpoint_id=first.checkpoint_id,
        step=first.step,
        episodes=n,
        successes=successes,
        success_rate=successes / n,
        success_ci95=wilson_interval(successes, n),
        picks=picks,
        pick_rate=picks / n,
        drops=drops,
        drop_rate=drops / picks if picks else None,
        outcome_counts=outcome_counts,
        mean_steps_of_successes=float(np.mean(success_steps)) if success_steps else None,
        max_block_height_m_mean=float(heights.mean()),
        max_block_height_m_max=float(heights.max()),
        action_space=first.action_space,
        ik_failure_rate=(sum(r.ik_failures for r in records) / total_steps if total_steps else 0.0)
        if ee
        else None,
        ik_error_mm_mean=float(np.mean(ik_errors)) if ee and ik_errors else None,
        latency_mean_ms=float((latency_means * inferences).sum() / inferences.sum())
        if inferences.sum()
        else 0.0,
        latency_p95_ms=float(np.median([record.latency_p95_ms for record in records])),
        wall_time_s_mean=float(np.mean([record.wall_time_s for record in records])),
        seeds=sorted(record.seed for record in records),
        progress_mean=float(np.mean(progress)) if progress else None,
        progress_ci95=mean_interval(progress) if progress else None,
        progress_stage_counts={
            name: sum(progress_stage_name(value) == name for value in progress) for name in PROGRESS_STAGES
        }
        if progress
        else {},
    )


def rank_key(summary: CheckpointSummary) -> tuple[float, float, int]:
    """Best first: success rate, then the interval's lower bound (more evidence), then the later step."""
    return (-summary.success_rate, -summary.success_ci95[0], -(summary.step or 0))


@dataclass
class PairedComparison:
    best: str
    runner_up: str
    shared_seeds: int
    best_successes: int
    runner_up_successes: int
    #: seeds where only the best succeeded / only the runner-up succeeded
    only_best: int
    only_runner_up: int
    p_value: float
    significant: bool
    wording: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def paired_comparison(
    best: Sequence[EpisodeRecord], runner_up: Sequence[EpisodeRecord], alpha: float = 0.05
) -> PairedComparison:
    """Exact McNemar test of two checkpoints on the seeds both were evaluated on."""
    best_by_seed = {record.seed: record.success for record in best}
    other_by_seed = {record.seed: record.success for record in runner_up}
    shared = sorted(best_by_seed.keys() & other_by_seed.keys())
    best_id, other_id = best[0].checkpoint_id, runner_up[0].checkpoint_id
    only_best = sum(best_by_seed[s] and not other_by_seed[s] for s in shared)
    only_other = sum(other_by_seed[s] and not best_by_seed[s] for s in shared)
    best_wins = sum(best_by_seed[s] for s in shared)
    other_wins = sum(other_by_seed[s] for s in shared)
    p = exact_mcnemar_p(only_best, only_other)
    significant = p < alpha
    n = len(shared)
    head = (
        f"On the {n} seeds both were run on, {best_id} succeeded {best_wins}/{n} and {other_id} "
        f"{other_wins}/{n}; they disagreed on {only_best + only_other} "
        f"({only_best} only {best_id}, {only_other} only {other_id}). Exact McNemar p = {p:.3g}: "
    )
    if significant:
        verdict = f"{best_id} is better than {other_id} at the {alpha:.0%} level."
    else:
        verdict = (
            "the difference is within what chance alone produces, so these episodes do not show that "
            f"{best_id} is better than {other_id}; run more seeds to separate them."
        )
    return PairedComparison(
        best=best_id,
        runner_up=other_id,
        shared_seeds=n,
        best_successes=best_wins,
        runner_up_successes=other_wins,
        only_best=only_best,
        only_runner_up=only_other,
        p_value=p,
        significant=significant,
        wording=head + verdict,
    )
