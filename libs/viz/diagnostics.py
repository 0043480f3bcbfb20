"""Likely causes of failure, computed from an episode's forecast chunks and the training data's stats.

Each check reads only the whiskers (``WhiskerEpisode``) and, where it needs them, the dataset's ``action``
stats in LeRobot's layout (``mean``, ``std``, ``min``, ``max``), and returns a ``Finding``: a number, the
threshold it is compared with, and whether it points at a cause. Thresholds are named constants below,
each with how it was chosen; they are deliberately coarse — these are hints for a person to follow up
with the whisker video, not verdicts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from libs.sim.failures import CLOSE_COMMAND
from libs.viz.whiskers import WhiskerEpisode

#: "does not move": the 90th percentile over chunks of the predicted gripper frame's largest distance from
#: where it was at inference — i.e. nine chunks in ten reach less than this. Holding a pose moves it < 1 mm
#: (gravity sag, servo settling); the scripted expert's 10-step chunks reach 2–6 cm while moving. 1 cm sits
#: an order of magnitude from both. A high percentile, not the median, so a policy that did its job and
#: then holds still for the rest of the episode is not flagged.
DOES_NOT_MOVE_M = 0.01
DOES_NOT_MOVE_PERCENTILE = 90.0
#: "mean regression": the gripper command counts as "at the mean" within this many dataset stds of the
#: dataset's mean gripper action. On scripted demonstrations (open 60 → closed 0 → 45; mean ≈ 25, std ≈ 23)
#: half a std is a band a demonstration-following policy only crosses in transitions.
MEAN_BAND_STD = 0.5
#: ... and is flagged when at least this fraction of all predicted gripper commands sit in that band.
MEAN_REGRESSION_FRACTION = 0.8
#: A gripper command (0–100) below this squeezes the block: the failure diagnosis's own threshold (its
#: comment gives the measurements), so the whiskers and the report never disagree on what "closed" means.
GRIPPER_CLOSE_THRESHOLD = CLOSE_COMMAND
#: "chunks disagree": median over consecutive chunk pairs of the mean distance between their predicted
#: gripper-frame positions for the same future steps. 2 cm is about the block's size: a plan that moves
#: by a block width between two inferences 1/6 s apart is changing its mind, not refining. The expert's
#: consecutive chunks agree to < 1 mm (same plan, same physics).
CHUNKS_DISAGREE_M = 0.02
#: "actions out of range": a value counts as outside when it is beyond the dataset's [min, max] widened by
#: this fraction of the range on each side (policies interpolate and extrapolate a little; 5% is noise).
OUT_OF_RANGE_MARGIN = 0.05
#: ... and the episode is flagged when more than this fraction of predicted action rows have one.
OUT_OF_RANGE_FRACTION = 0.05
#: "never approaches the block": the closest any predicted gripper-frame position gets to the block.
#: Grasping needs ~1 cm (the expert's forecasts reach < 3 mm); hovering above it at the expert's pre-grasp
#: height is 7 cm. 4 cm means the policy at least goes for the block.
NEVER_APPROACHES_M = 0.04

DOES_NOT_MOVE = "does not move"
MEAN_REGRESSION = "mean regression"
CHUNKS_DISAGREE = "chunks disagree"
OUT_OF_RANGE = "actions out of range"
NEVER_APPROACHES = "never approaches the block"
CHECK_NAMES: tuple[str, ...] = (
    DOES_NOT_MOVE,
    MEAN_REGRESSION,
    CHUNKS_DISAGREE,
    OUT_OF_RANGE,
    NEVER_APPROACHES,
)


@dataclass(frozen=True)
class Finding:
    """One check on one episode. ``flagged`` None means it could not be measured (``detail`` says why)."""

    name: str
    flagged: bool | None
    value: float | None
    threshold: float
    unit: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _stat(stats: Mapping[str, Any] | None, key: str, width: int) -> np.ndarray | None:
    if not stats or key not in stats:
        return None
    value = np.asarray(stats[key], dtype=np.float64).reshape(-1)
    return value if value.shape == (width,) else None


def does_not_move(episode: WhiskerEpisode) -> Finding:
    reaches = [
        float(np.max(np.linalg.norm(f.ee_path - f.ee_start, axis=1))) for f in episode.forecasts if f.length
    ]
    if not reaches:
        return Finding(DOES_NOT_MOVE, None, None, DOES_NOT_MOVE_M, "m", "no chunks were predicted")
    reach = float(np.percentile(reaches, DOES_NOT_MOVE_PERCENTILE))
    detail = (
        f"predicted gripper travel per chunk: {DOES_NOT_MOVE_PERCENTILE:.0f}th percentile "
        f"{100 * reach:.1f} cm, "
        f"median {100 * float(np.median(reaches)):.1f} cm, largest {100 * max(reaches):.1f} cm"
    )
    return Finding(DOES_NOT_MOVE, reach < DOES_NOT_MOVE_M, reach, DOES_NOT_MOVE_M, "m", detail)


def mean_regression(episode: WhiskerEpisode, action_stats: Mapping[str, Any] | None) -> Finding:
    commands = np.concatenate([f.gripper_command for f in episode.forecasts]) if episode.forecasts else None
    if commands is None or commands.size == 0:
        return Finding(MEAN_REGRESSION, None, None, MEAN_REGRESSION_FRACTION, "fraction", "no chunks")
    width = episode.forecasts[0].actions.shape[1]
    mean, std = _stat(action_stats, "mean", width), _stat(action_stats, "std", width)
    lowest = float(commands.min())
    closes = lowest < GRIPPER_CLOSE_THRESHOLD
    if mean is None or std is None:
        return Finding(
            MEAN_REGRESSION,
            None,
            None,
            MEAN_REGRESSION_FRACTION,
            "fraction",
            f"no dataset action stats (pass the dataset): lowest gripper command {lowest:.0f} "
            f"({'crosses' if closes else 'never crosses'} the close threshold {GRIPPER_CLOSE_THRESHOLD:.0f})",
        )
    gripper_mean, gripper_std = float(mean[-1]), max(float(std[-1]), 1e-6)
    near = float(np.mean(np.abs(commands - gripper_mean) <= MEAN_BAND_STD * gripper_std))
    flagged = near >= MEAN_REGRESSION_FRACTION and not closes
    detail = (
        f"{100 * near:.0f}% of gripper commands within {MEAN_BAND_STD}·std of the dataset mean "
        f"{gripper_mean:.0f} (std {gripper_std:.0f}); lowest command {lowest:.0f}, close threshold "
        f"{GRIPPER_CLOSE_THRESHOLD:.0f}" + ("" if closes else " never crossed: the gripper never closes")
    )
    return Finding(MEAN_REGRESSION, flagged, near, MEAN_REGRESSION_FRACTION, "fraction", detail)


def chunks_disagree(episode: WhiskerEpisode) -> Finding:
    spreads = []
    for before, after in zip(episode.forecasts, episode.forecasts[1:], strict=False):
        # Row i of a chunk predicts the state after env step env_step + i + 1.
        offset = after.env_step - before.env_step
        overlap = min(before.length - offset, after.length)
        if offset <= 0 or overlap <= 0:
            continue
        distance = np.linalg.norm(before.ee_path[offset : offset + overlap] - after.ee_path[:overlap], axis=1)
        spreads.append(float(distance.mean()))
    if not spreads:
        return Finding(
            CHUNKS_DISAGREE,
            None,
            None,
            CHUNKS_DISAGREE_M,
            "m",
            "consecutive chunks share no future steps (n_action_steps = chunk length): not measurable",
        )
    median = float(np.median(spreads))
    detail = (
        f"consecutive chunks' predicted gripper positions for the same steps differ by {100 * median:.1f} cm "
        f"(median over {len(spreads)} pairs; largest {100 * max(spreads):.1f} cm)"
    )
    return Finding(CHUNKS_DISAGREE, median > CHUNKS_DISAGREE_M, median, CHUNKS_DISAGREE_M, "m", detail)


def out_of_range(
    episode: WhiskerEpisode, action_stats: Mapping[str, Any] | None, action_names: Sequence[str] | None = None
) -> Finding:
    if not episode.forecasts:
        return Finding(OUT_OF_RANGE, None, None, OUT_OF_RANGE_FRACTION, "fraction", "no chunks")
    actions = np.concatenate([f.actions for f in episode.forecasts]).astype(np.float64)
    width = actions.shape[1]
    low, high = _stat(action_stats, "min", width), _stat(action_stats, "max", width)
    if low is None or high is None:
        return Finding(
            OUT_OF_RANGE,
            None,
            None,
            OUT_OF_RANGE_FRACTION,
            "fraction",
            "no dataset action min/max of this action's width (pass the dataset)",
        )
    margin = OUT_OF_RANGE_MARGIN * (high - low) + 1e-6
    outside = (actions < low - margin) | (actions > high + margin)
    fraction = float(np.mean(outside.any(axis=1)))
    names = (
        list(action_names) if action_names and len(action_names) == width else [str(i) for i in range(width)]
    )
    worst = [names[i] for i in np.argsort(-outside.mean(axis=0)) if outside[:, i].any()][:3]
    detail = (
        f"{100 * fraction:.0f}% of predicted actions outside the dataset's range "
        f"(±{100 * OUT_OF_RANGE_MARGIN:.0f}%)" + (f", mostly {', '.join(worst)}" if worst else "")
    )
    return Finding(
        OUT_OF_RANGE, fraction > OUT_OF_RANGE_FRACTION, fraction, OUT_OF_RANGE_FRACTION, "fraction", detail
    )


def never_approaches(episode: WhiskerEpisode) -> Finding:
    distances = [
        float(np.min(np.linalg.norm(f.ee_path - f.block_start, axis=1)))
        for f in episode.forecasts
        if f.length
    ]
    if not distances:
        return Finding(NEVER_APPROACHES, None, None, NEVER_APPROACHES_M, "m", "no chunks were predicted")
    closest = min(distances)
    actual = np.asarray(episode.actual_ee) - np.asarray(episode.actual_block)
    actual_closest = float(np.min(np.linalg.norm(actual, axis=1))) if actual.size else float("nan")
    detail = (
        f"closest predicted gripper-to-block distance {100 * closest:.1f} cm "
        f"(actually reached {100 * actual_closest:.1f} cm)"
    )
    return Finding(NEVER_APPROACHES, closest > NEVER_APPROACHES_M, closest, NEVER_APPROACHES_M, "m", detail)


def diagnose(
    episode: WhiskerEpisode,
    action_stats: Mapping[str, Any] | None = None,
    action_names: Sequence[str] | None = None,
) -> list[Finding]:
    """Every check on one episode, in ``CHECK_NAMES`` order."""
    return [
        does_not_move(episode),
        mean_regression(episode, action_stats),
        chunks_disagree(episode),
        out_of_range(episode, action_stats, action_names),
        never_approaches(episode),
    ]


def likely_causes(findings: Sequence[Finding]) -> list[Finding]:
    return [finding for finding in findings if finding.flagged]


@dataclass(frozen=True)
class CheckSummary:
    """One check over several episodes of a checkpoint."""

    name: str
    flagged: int
    measured: int
    median_value: float | None
    threshold: float
    unit: str
    example: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize_findings(per_episode: Sequence[Sequence[Finding]]) -> list[CheckSummary]:
    """Per check: in how many episodes it fired, the median value, one episode's detail as an example."""
    summaries = []
    for name in CHECK_NAMES:
        findings = [f for episode in per_episode for f in episode if f.name == name]
        measured = [f for f in findings if f.flagged is not None]
        flagged = [f for f in measured if f.flagged]
        values = [f.value for f in measured if f.value is not None]
        example = (flagged or measured or findings)[0].detail if findings else ""
        threshold = findings[0].threshold if findings else float("nan")
        unit = findings[0].unit if findings else ""
        summaries.append(
            CheckSummary(
                name=name,
                flagged=len(flagged),
                measured=len(measured),
                median_value=float(np.median(values)) if values else None,
                threshold=threshold,
                unit=unit,
                example=example,
            )
        )
    return summaries


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    if unit == "m":
        return f"{100 * value:.1f} cm"
    return f"{100 * value:.0f}%"


def findings_lines(findings: Sequence[Finding]) -> list[str]:
    """Console lines: likely causes first, then the checks that passed or could not be measured."""
    lines = []
    causes = likely_causes(findings)
    lines.append("likely causes: " + (", ".join(f.name for f in causes) if causes else "none found"))
    for finding in findings:
        status = {True: "FLAG", False: "ok", None: "n/a"}[finding.flagged]
        lines.append(f"  [{status:>4}] {finding.name}: {finding.detail}")
    return lines
