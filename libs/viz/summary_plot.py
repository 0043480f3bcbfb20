"""One PNG per whisker episode: predicted and actual paths from above and from the side, and the gripper.

Top-down (x–y) and side (x–z) views show every forecast chunk (blue, later chunks darker), the path
actually taken (orange), the block's start and the bowl; the third panel shows the gripper command of every
forecast over time against the executed command, the simulated opening, the close threshold and the
dataset's mean gripper action (± the band the mean-regression check uses). Likely causes go in the title.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from libs.viz.diagnostics import GRIPPER_CLOSE_THRESHOLD, MEAN_BAND_STD, Finding, likely_causes
from libs.viz.whiskers import WhiskerEpisode

ACTUAL_COLOR = "#ff8c00"
FORECAST_COLOR = "#2f6bff"
BLOCK_COLOR = "#d62728"
BOWL_COLOR = "#1f3fbf"


def plot_whisker_summary(
    episode: WhiskerEpisode,
    path: str | Path,
    *,
    action_stats: Mapping[str, Any] | None = None,
    findings: Sequence[Finding] = (),
    bowl_radius_m: float | None = None,
) -> Path:
    """Writes the summary PNG to ``path`` and returns it."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure = Figure(figsize=(13, 4.4), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    top, side, gripper = figure.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1, 1.4]})
    actual = np.asarray(episode.actual_ee).reshape(-1, 3)
    block = np.asarray(episode.block_start)
    bowl = np.asarray(episode.bowl_position)
    count = max(len(episode.forecasts), 1)

    for axes, (a, b), labels in ((top, (0, 1), ("x (m)", "y (m)")), (side, (0, 2), ("x (m)", "z (m)"))):
        for index, forecast in enumerate(episode.forecasts):
            points = np.vstack([forecast.ee_start, forecast.ee_path])
            axes.plot(
                points[:, a],
                points[:, b],
                color=FORECAST_COLOR,
                alpha=0.15 + 0.6 * index / count,
                linewidth=0.8,
                label="forecast chunks" if index == 0 else None,
                zorder=3,  # over the path taken, which the first steps of each forecast retrace
            )
        if len(actual):
            axes.plot(
                actual[:, a], actual[:, b], color=ACTUAL_COLOR, linewidth=2.5, label="path taken", zorder=2
            )
        axes.scatter(
            [block[a]], [block[b]], marker="s", s=60, color=BLOCK_COLOR, label="block (start)", zorder=5
        )
        if b == 1 and bowl_radius_m:
            axes.add_patch(_circle(bowl[:2], bowl_radius_m))
        axes.scatter([bowl[a]], [bowl[b]], marker="o", s=30, color=BOWL_COLOR, label="bowl", zorder=5)
        axes.set_xlabel(labels[0])
        axes.set_ylabel(labels[1])
        axes.grid(alpha=0.3)
    top.set_title("from above")
    top.set_aspect("equal", adjustable="datalim")
    side.set_title("from the side")
    top.legend(loc="best", fontsize=7)

    for index, forecast in enumerate(episode.forecasts):
        steps = forecast.env_step + 1 + np.arange(forecast.length)
        gripper.plot(
            steps,
            forecast.gripper_command,
            color=FORECAST_COLOR,
            alpha=0.15 + 0.6 * index / count,
            linewidth=0.8,
            label="predicted command" if index == 0 else None,
        )
    if episode.executed_actions:
        executed = np.asarray(episode.executed_actions)[:, -1]
        gripper.plot(
            np.arange(1, len(executed) + 1),
            executed,
            color=ACTUAL_COLOR,
            linewidth=2,
            label="executed command",
        )
    if episode.actual_gripper:
        gripper.plot(
            np.arange(len(episode.actual_gripper)),
            episode.actual_gripper,
            color="0.4",
            linewidth=1,
            label="opening",
        )
    gripper.axhline(GRIPPER_CLOSE_THRESHOLD, color=BLOCK_COLOR, linestyle=":", label="close threshold")
    if action_stats and "mean" in action_stats and "std" in action_stats:
        mean = float(np.asarray(action_stats["mean"], dtype=np.float64).reshape(-1)[-1])
        std = float(np.asarray(action_stats["std"], dtype=np.float64).reshape(-1)[-1])
        gripper.axhline(mean, color="k", linestyle="--", linewidth=1, label="dataset mean")
        gripper.axhspan(mean - MEAN_BAND_STD * std, mean + MEAN_BAND_STD * std, color="k", alpha=0.07)
    gripper.set_xlabel("env step")
    gripper.set_ylabel("gripper (0 closed – 100 open)")
    gripper.set_title("gripper")
    gripper.grid(alpha=0.3)
    gripper.legend(loc="best", fontsize=7)

    causes = likely_causes(findings)
    cause_text = (
        ", ".join(f.name for f in causes) if causes else ("none found" if findings else "not computed")
    )
    policy = episode.checkpoint_id or episode.policy or "policy"
    figure.suptitle(
        f"{policy} · seed {episode.seed} · {episode.outcome} · {episode.steps} steps · whiskers "
        f"{episode.mode_label}\nlikely causes: {cause_text}",
        fontsize=10,
    )
    figure.savefig(path)
    return path


def _circle(center: np.ndarray, radius: float) -> Any:
    from matplotlib.patches import Circle

    return Circle(tuple(center), radius, fill=False, color=BOWL_COLOR, linewidth=1.2)
