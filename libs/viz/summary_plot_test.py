"""The whisker summary is drawn to be read: forecasts thick and coloured by time over a thin path taken,
every chunk drawn even when fully executed, forecast error measured, the bowl drawn as a bowl in both
views."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.patches import Circle

from libs.viz.fixtures import BLOCK, BOWL, straight_episode
from libs.viz.summary_plot import (
    ACTUAL_WIDTH,
    FORECAST_WIDTH,
    forecast_errors,
    plot_whisker_summary,
    whisker_summary_figure,
)


def test_every_fully_executed_chunk_is_drawn_thick_over_a_thin_path() -> None:
    episode = straight_episode()
    figure = whisker_summary_figure(episode, failure="closes on air at 2.0 s (step 60): the jaws shut 1.8 cm")
    top, side = figure.axes[0], figure.axes[1]
    for axes in (top, side):
        widths = [line.get_linewidth() for line in axes.get_lines()]
        assert widths.count(FORECAST_WIDTH) == len(episode.forecasts)
        assert ACTUAL_WIDTH in widths and ACTUAL_WIDTH < FORECAST_WIDTH / 3
    # Time is a colour ramp: each chunk has its own colour.
    colours = {
        line.get_color() if isinstance(line.get_color(), str) else tuple(line.get_color())
        for line in top.get_lines()
        if line.get_linewidth() == FORECAST_WIDTH
    }
    assert len(colours) == len(episode.forecasts)
    assert "closes on air" in figure.get_suptitle()


def test_the_bowl_is_a_bowl_in_both_views() -> None:
    figure = whisker_summary_figure(straight_episode(), bowl_radius_m=0.055)
    top, side = figure.axes[0], figure.axes[1]
    rims = [patch for patch in top.patches if isinstance(patch, Circle)]
    assert rims and all(abs(patch.get_radius() - 0.055) < 1e-9 for patch in rims)
    # From the side: a cross-section 11 cm wide (walls at ±radius around the bowl's place on the
    # block → bowl line), not a dot.
    distance = float(np.linalg.norm(BOWL[:2] - BLOCK[:2]))
    walls = [line for line in side.get_lines() if len(line.get_xdata()) == 4]
    assert walls
    xs = np.asarray(walls[0].get_xdata())
    assert np.allclose([xs.min(), xs.max()], [distance - 0.055, distance + 0.055])


def test_forecast_error_is_zero_where_executed_and_the_drift_after_replanning() -> None:
    executed = straight_episode()
    assert all(np.allclose(errors, 0.0) for _, errors in forecast_errors(executed))
    drifting = straight_episode(chunk=4, executed=2, drift=0.01)
    steps, errors = forecast_errors(drifting)[0]
    assert list(steps) == [1, 2, 3, 4]
    assert np.allclose(errors, [0.01, 0.02, 0.03, 0.04])


def test_the_png_is_written(tmp_path: Path) -> None:
    path = plot_whisker_summary(straight_episode(), tmp_path / "summary.png")
    assert path.stat().st_size > 10_000
