"""One PNG per whisker episode, drawn to be read: what the policy intended, what happened, and when.

Four panels share one colour ramp for time (the env step at which each chunk was predicted):
- **from above** (x–y) and **from the side** (height against the distance along the line from the block's
  start to the bowl, so block and bowl never overlap): every chunk's forecast is a thick coloured line
  (shown even when the whole chunk was executed, where it runs along the path taken); the path actually
  taken is a thin black line with a tick each second; block and bowl are drawn to scale (the bowl as its
  rim from above and its cross-section from the side).
- **gripper**: each chunk's predicted command as a thick coloured line with dots, the executed command as
  a thin black dashed line, the measured opening in grey, the close threshold and the dataset's mean.
- **forecast − what happened**: per chunk, the distance between each predicted gripper-frame position and
  where the gripper really was at that step; dots mark the rows that were executed, a cross the first row
  that was not (the policy re-planned there). Dynamic whiskers reproduce executed rows to ~0; the rest is
  intent against outcome.
The title names the episode's failure (``libs.sim.failures``) when it is given, and the likely causes of
the forecast checks (``libs.viz.diagnostics``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from libs.viz.diagnostics import GRIPPER_CLOSE_THRESHOLD, MEAN_BAND_STD, Finding, likely_causes
from libs.viz.whiskers import WhiskerEpisode

TIME_COLORMAP = "viridis"
ACTUAL_COLOR = "black"
BLOCK_COLOR = "#d62728"
BOWL_COLOR = "#1f3fbf"
OPENING_COLOR = "0.55"
#: Line widths (points): forecasts prominent, the path taken thin enough to show the forecast around it.
FORECAST_WIDTH = 3.6
ACTUAL_WIDTH = 0.7
#: Executed-path ticks every this many seconds.
TICK_S = 1.0
#: Defaults of the bench scene (libs.sim.scene_config), for recordings that do not say.
BLOCK_SIZE_M = 0.025
BOWL_RADIUS_M = 0.055
BOWL_WALL_HEIGHT_M = 0.03


class _SideAxis:
    """Horizontal coordinate of the side view: metres along the block-start → bowl line."""

    def __init__(self, block_xy: np.ndarray, bowl_xy: np.ndarray) -> None:
        self.origin = np.asarray(block_xy, dtype=np.float64)
        direction = np.asarray(bowl_xy, dtype=np.float64) - self.origin
        norm = float(np.linalg.norm(direction))
        self.direction = direction / norm if norm > 1e-9 else np.array([1.0, 0.0])

    def along(self, points: np.ndarray) -> np.ndarray:
        return (np.asarray(points)[..., :2] - self.origin) @ self.direction


def forecast_errors(episode: WhiskerEpisode) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per forecast: (env steps, distance in m from each predicted gripper position to the actual one at
    that step), for the rows the episode lived to see."""
    actual = np.asarray(episode.actual_ee).reshape(-1, 3)
    errors = []
    for forecast in episode.forecasts:
        steps = forecast.env_step + 1 + np.arange(forecast.length)
        seen = steps < len(actual)
        errors.append((steps[seen], np.linalg.norm(forecast.ee_path[seen] - actual[steps[seen]], axis=1)))
    return errors


def plot_whisker_summary(episode: WhiskerEpisode, path: str | Path, **figure_options: Any) -> Path:
    """Writes the summary PNG to ``path`` (options: ``whisker_summary_figure``'s) and returns it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    whisker_summary_figure(episode, **figure_options).savefig(path)
    return path


def whisker_summary_figure(
    episode: WhiskerEpisode,
    *,
    action_stats: Mapping[str, Any] | None = None,
    findings: Sequence[Finding] = (),
    bowl_radius_m: float | None = None,
    failure: str | None = None,
    block_size_m: float = BLOCK_SIZE_M,
    bowl_wall_height_m: float = BOWL_WALL_HEIGHT_M,
) -> Any:
    """The summary as a matplotlib ``Figure`` (see the module docstring)."""
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    figure = Figure(figsize=(14, 9.2), dpi=90, layout="constrained")
    FigureCanvasAgg(figure)
    (top, side), (gripper, error) = figure.subplots(2, 2, gridspec_kw={"width_ratios": [1, 1.25]})
    actual = np.asarray(episode.actual_ee).reshape(-1, 3)
    block = np.asarray(episode.block_start)
    bowl = np.asarray(episode.bowl_position)
    radius = bowl_radius_m or BOWL_RADIUS_M
    steps_total = max(len(actual) - 1, 1)
    norm = Normalize(0, steps_total)
    ramp = colormaps[TIME_COLORMAP]

    def color(step: int) -> Any:
        return ramp(norm(step))

    side_axis = _SideAxis(block[:2], bowl[:2])
    views = (
        (top, lambda p: np.asarray(p)[..., 0], lambda p: np.asarray(p)[..., 1], "x (m)", "y (m)"),
        (side, side_axis.along, lambda p: np.asarray(p)[..., 2], "along block → bowl (m)", "height (m)"),
    )
    for axes, horizontal, vertical, xlabel, ylabel in views:
        _draw_forecast_paths(axes, horizontal, vertical, episode, color)
        if len(actual):
            _draw_path_taken(axes, horizontal, vertical, actual)
        axes.set_xlabel(xlabel)
        axes.set_ylabel(ylabel)
        axes.grid(alpha=0.3)
    _draw_scene_from_above(top, block, bowl, radius, block_size_m)
    _draw_scene_from_side(side, side_axis, block, bowl, radius, block_size_m, bowl_wall_height_m)
    top.set_title("from above")
    top.set_aspect("equal", adjustable="datalim")
    side.set_title("from the side, along the line block → bowl")
    side.set_aspect("equal", adjustable="datalim")
    top.legend(handles=_legend_handles(), loc="upper left", fontsize=7, framealpha=0.8)

    _draw_gripper(gripper, episode, color, action_stats)
    _draw_errors(error, episode, color)
    colorbar = figure.colorbar(ScalarMappable(norm, ramp), ax=[gripper, error], location="right", shrink=0.9)
    colorbar.set_label("env step of the forecast (30 per s)")
    figure.suptitle(_figure_title(episode, findings, failure), fontsize=9.5)
    return figure


def _draw_forecast_paths(
    axes: Any, horizontal: Callable, vertical: Callable, episode: WhiskerEpisode, color: Callable
) -> None:
    """Each chunk's forecast, from where the gripper was, as a thick line coloured by its step."""
    for forecast in episode.forecasts:
        points = np.vstack([forecast.ee_start, forecast.ee_path])
        axes.plot(
            horizontal(points),
            vertical(points),
            color=color(forecast.env_step),
            linewidth=FORECAST_WIDTH,
            alpha=0.85,
            solid_capstyle="round",
            zorder=3,
        )
        axes.scatter(
            horizontal(points[-1:]), vertical(points[-1:]), color=color(forecast.env_step), s=10, zorder=4
        )


def _draw_path_taken(axes: Any, horizontal: Callable, vertical: Callable, actual: np.ndarray) -> None:
    """The path actually taken as a thin line, with a labelled tick every ``TICK_S`` seconds."""
    hz = 30.0
    axes.plot(horizontal(actual), vertical(actual), color=ACTUAL_COLOR, linewidth=ACTUAL_WIDTH, zorder=5)
    ticks = np.arange(0, len(actual), int(TICK_S * hz))[1:]
    axes.scatter(
        horizontal(actual[ticks]),
        vertical(actual[ticks]),
        color="white",
        edgecolor=ACTUAL_COLOR,
        s=22,
        linewidth=0.8,
        zorder=6,
    )
    for tick in ticks:
        axes.annotate(
            f"{tick / hz:.0f}s",
            (horizontal(actual[tick]), vertical(actual[tick])),
            fontsize=7,
            xytext=(4, 3),
            textcoords="offset points",
            zorder=7,
        )


def _figure_title(episode: WhiskerEpisode, findings: Sequence[Finding], failure: str | None) -> str:
    """Policy, seed, outcome and chunking; the failure when given; the forecast checks' likely causes."""
    causes = likely_causes(findings)
    cause_text = (
        ", ".join(f.name for f in causes) if causes else ("none found" if findings else "not computed")
    )
    policy = episode.checkpoint_id or episode.policy or "policy"
    title = (
        f"{policy} · seed {episode.seed} · {episode.outcome} · {episode.steps} steps · chunk "
        f"{episode.chunk_length}, {episode.n_action_steps} executed · whiskers {episode.mode_label}"
    )
    if failure:
        title += "\n" + _wrap(failure, 170)
    title += f"\nforecast checks, likely causes: {cause_text}"
    return title


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)[:3])


def _legend_handles() -> list[Any]:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    return [
        Line2D(
            [], [], color=colormaps_mid(), linewidth=FORECAST_WIDTH, label="forecast chunk (colour: step)"
        ),
        Line2D(
            [],
            [],
            color=ACTUAL_COLOR,
            linewidth=0.8,
            marker="o",
            markerfacecolor="white",
            markersize=4,
            label="path taken (tick = 1 s)",
        ),
        Patch(facecolor=BLOCK_COLOR, alpha=0.6, label="block (start)"),
        Patch(facecolor="none", edgecolor=BOWL_COLOR, label="bowl"),
    ]


def colormaps_mid() -> Any:
    from matplotlib import colormaps

    return colormaps[TIME_COLORMAP](0.5)


def _draw_scene_from_above(
    axes: Any, block: np.ndarray, bowl: np.ndarray, radius: float, block_size: float
) -> None:
    from matplotlib.patches import Circle, Rectangle

    half = block_size / 2
    axes.add_patch(
        Rectangle(
            (block[0] - half, block[1] - half), block_size, block_size, color=BLOCK_COLOR, alpha=0.6, zorder=2
        )
    )
    axes.add_patch(Circle(tuple(bowl[:2]), radius, fill=False, color=BOWL_COLOR, linewidth=1.6, zorder=2))
    axes.add_patch(Circle(tuple(bowl[:2]), radius, color=BOWL_COLOR, alpha=0.08, zorder=1))


def _draw_scene_from_side(
    axes: Any,
    side_axis: _SideAxis,
    block: np.ndarray,
    bowl: np.ndarray,
    radius: float,
    block_size: float,
    wall_height: float,
) -> None:
    from matplotlib.patches import Rectangle

    half = block_size / 2
    along = float(side_axis.along(block[:2]))
    axes.add_patch(
        Rectangle(
            (along - half, block[2] - half), block_size, block_size, color=BLOCK_COLOR, alpha=0.6, zorder=2
        )
    )
    centre = float(side_axis.along(bowl[:2]))
    # The bowl's cross-section: floor and two walls, as seen from the side.
    axes.plot(
        [centre - radius, centre - radius, centre + radius, centre + radius],
        [wall_height, 0.0, 0.0, wall_height],
        color=BOWL_COLOR,
        linewidth=1.6,
        zorder=2,
    )
    axes.add_patch(Rectangle((centre - radius, 0.0), 2 * radius, wall_height, color=BOWL_COLOR, alpha=0.08))
    axes.axhline(0.0, color="0.3", linewidth=0.8, zorder=1)


def _draw_gripper(
    axes: Any, episode: WhiskerEpisode, color: Any, action_stats: Mapping[str, Any] | None
) -> None:
    for forecast in episode.forecasts:
        steps = forecast.env_step + 1 + np.arange(forecast.length)
        axes.plot(
            steps,
            forecast.gripper_command,
            color=color(forecast.env_step),
            linewidth=2.4,
            alpha=0.85,
            marker="o",
            markersize=2.5,
            zorder=3,
        )
    if episode.executed_actions:
        executed = np.asarray(episode.executed_actions)[:, -1]
        axes.plot(
            np.arange(1, len(executed) + 1),
            executed,
            color=ACTUAL_COLOR,
            linewidth=0.9,
            linestyle="--",
            label="executed command",
            zorder=5,
        )
    if episode.actual_gripper:
        axes.plot(
            np.arange(len(episode.actual_gripper)),
            episode.actual_gripper,
            color=OPENING_COLOR,
            linewidth=1.2,
            label="measured opening",
            zorder=4,
        )
    axes.plot(
        [], [], color=colormaps_mid(), linewidth=2.4, marker="o", markersize=2.5, label="predicted command"
    )
    axes.axhline(GRIPPER_CLOSE_THRESHOLD, color=BLOCK_COLOR, linestyle=":", label="close threshold")
    if action_stats and "mean" in action_stats and "std" in action_stats:
        mean = float(np.asarray(action_stats["mean"], dtype=np.float64).reshape(-1)[-1])
        std = float(np.asarray(action_stats["std"], dtype=np.float64).reshape(-1)[-1])
        axes.axhline(mean, color="k", linestyle="-.", linewidth=0.8, label="dataset mean")
        axes.axhspan(mean - MEAN_BAND_STD * std, mean + MEAN_BAND_STD * std, color="k", alpha=0.06)
    axes.set_xlabel("env step")
    axes.set_ylabel("gripper (0 closed – 100 open)")
    axes.set_title("gripper: predicted (colour), executed (dashed), measured (grey)")
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize=7)


def _draw_errors(axes: Any, episode: WhiskerEpisode, color: Any) -> None:
    executed = max(episode.n_action_steps, 1)
    ends = []
    for forecast, (steps, distances) in zip(episode.forecasts, forecast_errors(episode), strict=True):
        if not len(steps):
            continue
        tone = color(forecast.env_step)
        axes.plot(steps, 100 * distances, color=tone, linewidth=1.6, alpha=0.85)
        axes.scatter(steps[:executed], 100 * distances[:executed], color=tone, s=6)
        if len(steps) > executed:
            axes.scatter(steps[executed], 100 * distances[executed], color=tone, marker="x", s=28)
        ends.append(float(distances[-1]))
    summary = (
        f"at a chunk's last row: median {100 * float(np.median(ends)):.1f} cm, "
        f"largest {100 * max(ends):.1f} cm"
        if ends
        else "no forecasts"
    )
    axes.set_title(f"forecast − what happened: {summary}", fontsize=10)
    if episode.mode == "dynamic" and episode.n_action_steps >= episode.chunk_length:
        # Nothing was left unexecuted: the forecast replays the same actions through the same physics.
        axes.text(
            0.02,
            0.95,
            "every chunk was executed whole, and dynamic whiskers simulate it with the env's own physics:\n"
            "forecast = path taken (0 by construction). Kinematic whiskers (--whiskers-mode kinematic)\n"
            "show where the commanded joints would put the gripper against where it got.",
            transform=axes.transAxes,
            va="top",
            fontsize=8,
            bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "0.7"},
        )
    axes.set_xlabel("env step")
    axes.set_ylabel("distance (cm)")
    axes.grid(alpha=0.3)
