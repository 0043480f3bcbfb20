"""Perturbation arms against their matched control: the paired difference each arm makes, with an interval.

An arm's episodes run on the same seeds as the checkpoint's unperturbed control, so each seed is a pair
(control, arm) and the arm's effect is the mean paired difference, arm minus control. For success the
interval is Agresti and Min's adjusted Wald interval for a difference of paired proportions (half an episode
added to each cell of the 2×2 table, which keeps it honest at 0% and 100%); for progress it is the normal
interval of the mean paired difference. Subtracting the control, not comparing the arm's rate with a number
from another run, is what keeps the sign of a robustness conclusion.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from libs.evaluation.results.episode_record import EpisodeRecord
from libs.evaluation.results.report_section import ReportSection
from libs.evaluation.stats.metrics import Z_95, exact_mcnemar_p


@dataclass(frozen=True)
class ArmDifference:
    checkpoint_id: str
    arm: str
    seeds: int
    control_successes: int
    arm_successes: int
    #: Arm minus control success rate on the shared seeds, with its 95% interval.
    success_difference: float
    success_difference_ci95: tuple[float, float]
    mcnemar_p: float
    #: Arm minus control mean progress, with its 95% interval (None without progress scores).
    progress_difference: float | None
    progress_difference_ci95: tuple[float, float] | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def paired_difference_interval(
    arm_only: int, control_only: int, both: int, neither: int
) -> tuple[float, float]:
    """Agresti–Min 95% interval of (arm rate − control rate) from the 2×2 table of paired outcomes."""
    n = arm_only + control_only + both + neither + 2.0
    p_arm_only, p_control_only = (arm_only + 0.5) / n, (control_only + 0.5) / n
    difference = p_arm_only - p_control_only
    variance = max(0.0, (p_arm_only + p_control_only - difference * difference) / n)
    half = Z_95 * math.sqrt(variance)
    return (max(-1.0, difference - half), min(1.0, difference + half))


def arm_difference(
    control: Sequence[EpisodeRecord], arm: Sequence[EpisodeRecord], arm_name: str
) -> ArmDifference:
    control_by_seed = {record.seed: record for record in control}
    arm_by_seed = {record.seed: record for record in arm}
    shared = sorted(control_by_seed.keys() & arm_by_seed.keys())
    pairs = [(control_by_seed[s], arm_by_seed[s]) for s in shared]
    arm_only = sum(a.success and not c.success for c, a in pairs)
    control_only = sum(c.success and not a.success for c, a in pairs)
    both = sum(c.success and a.success for c, a in pairs)
    n = len(pairs)
    progress = [
        a.progress - c.progress for c, a in pairs if a.progress is not None and c.progress is not None
    ]
    progress_interval = None
    if len(progress) >= 2:
        values = np.asarray(progress)
        half = Z_95 * float(values.std(ddof=1)) / math.sqrt(values.size)
        progress_interval = (max(-1.0, float(values.mean()) - half), min(1.0, float(values.mean()) + half))
    return ArmDifference(
        checkpoint_id=control[0].checkpoint_id if control else "",
        arm=arm_name,
        seeds=n,
        control_successes=both + control_only,
        arm_successes=both + arm_only,
        success_difference=(arm_only - control_only) / n if n else 0.0,
        success_difference_ci95=paired_difference_interval(
            arm_only, control_only, both, n - arm_only - control_only - both
        ),
        mcnemar_p=exact_mcnemar_p(arm_only, control_only),
        progress_difference=float(np.mean(progress)) if progress else None,
        progress_difference_ci95=progress_interval,
    )


def arm_differences(
    records: Sequence[EpisodeRecord], checkpoint_ids: Sequence[str], arms: Sequence[str]
) -> list[ArmDifference]:
    """Each checkpoint's arms against its control (records' ``arm`` field: "" for the control)."""
    by_target: dict[tuple[str, str], list[EpisodeRecord]] = {}
    for record in records:
        by_target.setdefault((record.checkpoint_id, record.arm), []).append(record)
    differences = []
    for checkpoint_id in checkpoint_ids:
        control = by_target.get((checkpoint_id, ""), [])
        for arm in arms:
            perturbed = by_target.get((checkpoint_id, arm), [])
            if control and perturbed:
                differences.append(arm_difference(control, perturbed, arm))
    return differences


def _signed_percent(value: float) -> str:
    return f"{100 * value:+.0f}"


def arms_section(differences: Sequence[ArmDifference]) -> ReportSection:
    lines = [
        "Each arm ran on the same seeds as its checkpoint's unperturbed control; the difference is arm minus "
        "control on those seeds (percentage points, 95% Agresti–Min interval for success, normal interval "
        "for mean progress), with the exact McNemar p of the paired successes.",
        "",
        "| checkpoint | arm | seeds | control success | arm success | difference (95% interval) | McNemar p "
        "| progress difference (95% interval) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for d in differences:
        low, high = d.success_difference_ci95
        progress = "–"
        if d.progress_difference is not None and d.progress_difference_ci95 is not None:
            p_low, p_high = d.progress_difference_ci95
            progress = f"{d.progress_difference:+.2f} ({p_low:+.2f} to {p_high:+.2f})"
        lines.append(
            f"| {d.checkpoint_id} | {d.arm} | {d.seeds} | {d.control_successes}/{d.seeds} | "
            f"{d.arm_successes}/{d.seeds} | {_signed_percent(d.success_difference)} "
            f"({_signed_percent(low)} to {_signed_percent(high)}) | {d.mcnemar_p:.3g} | {progress} |"
        )
    hurt = [d for d in differences if d.success_difference_ci95[1] < 0]
    if hurt:
        names = ", ".join(f"{d.arm} ({d.checkpoint_id})" for d in hurt)
        lines.extend(["", f"Arms whose whole interval is below the control: {names}."])
    return ReportSection(
        "perturbations", "Perturbation arms", "\n".join(lines), [d.to_dict() for d in differences]
    )
