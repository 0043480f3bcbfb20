"""PNG plots of a sweep: success vs training step with 95% bands, outcome bars, spatial success maps."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: no display on training boxes or CI

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch, Rectangle

from libs.evaluation.results.episode_record import EpisodeRecord
from libs.evaluation.stats.metrics import OUTCOME_ORDER, CheckpointSummary

OUTCOME_COLORS: dict[str, str] = {
    "success": "#2ca02c",
    "never_picked_up": "#7f7f7f",
    "dropped_during_transport": "#d62728",
    "missed_goal": "#ff7f0e",
    "timeout": "#9467bd",
    "contract_violation": "#000000",
}


def _positions(summaries: Sequence[CheckpointSummary]) -> tuple[np.ndarray, str, list[str]]:
    labels = [summary.checkpoint_id for summary in summaries]
    if all(summary.step is not None for summary in summaries):
        return np.array([summary.step for summary in summaries], dtype=float), "training step", labels
    return np.arange(len(summaries), dtype=float), "checkpoint", labels


def plot_success_vs_step(summaries: Sequence[CheckpointSummary], path: Path) -> Path:
    x, xlabel, labels = _positions(summaries)
    rate = np.array([summary.success_rate for summary in summaries])
    low = np.array([summary.success_ci95[0] for summary in summaries])
    high = np.array([summary.success_ci95[1] for summary in summaries])
    figure, axes = plt.subplots(figsize=(7, 4))
    axes.fill_between(x, low, high, alpha=0.25, color="#1f77b4", label="95% Wilson interval")
    axes.errorbar(
        x,
        rate,
        yerr=[np.clip(rate - low, 0, None), np.clip(high - rate, 0, None)],
        fmt="o-",
        color="#1f77b4",
        capsize=3,
        label="success",
    )
    axes.set_ylim(-0.02, 1.02)
    axes.set_xlabel(xlabel)
    axes.set_ylabel("success rate")
    episodes = sorted({summary.episodes for summary in summaries})
    axes.set_title(f"Success per checkpoint ({'/'.join(map(str, episodes))} episodes each)")
    if xlabel == "checkpoint":
        axes.set_xticks(x, labels, rotation=30, ha="right")
    axes.grid(alpha=0.3)
    axes.legend(loc="best")
    return _save(figure, path)


def plot_outcome_bars(summaries: Sequence[CheckpointSummary], path: Path) -> Path:
    labels = [summary.checkpoint_id for summary in summaries]
    outcomes = list(OUTCOME_ORDER) + sorted(
        {name for summary in summaries for name in summary.outcome_counts} - set(OUTCOME_ORDER)
    )
    figure, axes = plt.subplots(figsize=(max(5, 0.8 * len(labels) + 3), 4))
    bottom = np.zeros(len(labels))
    for outcome in outcomes:
        counts = np.array([summary.outcome_counts.get(outcome, 0) for summary in summaries], dtype=float)
        if not counts.any():
            continue
        axes.bar(labels, counts, bottom=bottom, label=outcome, color=OUTCOME_COLORS.get(outcome))
        bottom += counts
    axes.set_ylabel("episodes")
    axes.set_title("Outcomes per checkpoint")
    axes.tick_params(axis="x", rotation=30)
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    return _save(figure, path)


def plot_spatial_map(
    records: Sequence[EpisodeRecord],
    path: Path,
    region_xy: tuple[tuple[float, float], tuple[float, float]],
    grid_shape: tuple[int, int],
    training_block_xy: Sequence[Sequence[float]] | None = None,
) -> Path:
    """Outcome per grid cell over the table (x forward from the robot, y to its left), with the training
    episodes' block positions overlaid, so one sees where the policy generalises and where it fails."""
    (x_min, x_max), (y_min, y_max) = region_xy
    columns, rows = grid_shape
    cell_w = (x_max - x_min) / max(columns - 1, 1)
    cell_h = (y_max - y_min) / max(rows - 1, 1)
    figure, axes = plt.subplots(figsize=(6, 6))
    for record in records:
        if record.block_x is None or record.block_y is None:
            continue
        # Drawn with y to the left so the map reads like the overhead view from behind the robot.
        axes.add_patch(
            Rectangle(
                (-(record.block_y) - cell_h / 2, record.block_x - cell_w / 2),
                cell_h,
                cell_w,
                facecolor=OUTCOME_COLORS.get(record.outcome, "#000000"),
                edgecolor="white",
                alpha=0.85,
            )
        )
    if training_block_xy:
        training = np.asarray(training_block_xy, dtype=float).reshape(-1, 2)
        axes.scatter(
            -training[:, 1], training[:, 0], marker="x", color="black", s=18, label="training blocks"
        )
    axes.set_xlim(-(y_max + cell_h), -(y_min - cell_h))
    axes.set_ylim(x_min - cell_w, x_max + cell_w)
    axes.set_aspect("equal")
    axes.set_xlabel("−y (m, robot's right →)")
    axes.set_ylabel("x (m, away from the robot)")
    name = records[0].checkpoint_id if records else ""
    successes = sum(record.success for record in records)
    axes.set_title(f"{name}: {successes}/{len(records)} grid cells succeed")
    present = sorted(
        {record.outcome for record in records},
        key=lambda o: OUTCOME_ORDER.index(o) if o in OUTCOME_ORDER else 99,
    )
    handles = [Patch(color=OUTCOME_COLORS.get(outcome, "#000000"), label=outcome) for outcome in present]
    if training_block_xy:
        handles.append(axes.collections[-1])
    axes.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    return _save(figure, path)


def _save(figure: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
