"""The whisker video draws as the summary PNG does: forecasts thick and coloured by the step they were
predicted at, the path taken thin and black, older chunks fading, a marker where the forecast closes."""

from __future__ import annotations

import mujoco
import numpy as np

from libs.viz.fixtures import straight_episode
from libs.viz.video import (
    ACTUAL_WIDTH_PX,
    CLOSE_RGBA,
    CURRENT_WIDTH_PX,
    PAST_WIDTH_PX,
    draw_whiskers,
    time_rgba,
)

MODEL = mujoco.MjModel.from_xml_string("<mujoco><worldbody><geom size='0.1'/></worldbody></mujoco>")


def drawn(episode, step: int) -> list[tuple[float, np.ndarray]]:
    """(line width, rgba) of each geom drawn at ``step``, in drawing order."""
    scene = mujoco.MjvScene(MODEL, maxgeom=500)
    draw_whiskers(scene, episode, step)
    return [(float(scene.geoms[i].size[0]), np.array(scene.geoms[i].rgba)) for i in range(scene.ngeom)]


def test_forecasts_are_thick_and_coloured_by_time_over_a_thin_black_path() -> None:
    episode = straight_episode(chunk=4, executed=4, chunks=3)
    geoms = drawn(episode, step=9)  # the third chunk (predicted at step 8) is in force
    widths = {width for width, _ in geoms}
    assert widths == {ACTUAL_WIDTH_PX, PAST_WIDTH_PX, CURRENT_WIDTH_PX}
    path = [rgba for width, rgba in geoms if width == ACTUAL_WIDTH_PX]
    assert len(path) == 9 and all(np.allclose(rgba, [0, 0, 0, 1]) for rgba in path)
    current = [rgba for width, rgba in geoms if width == CURRENT_WIDTH_PX]
    assert all(np.allclose(rgba, time_rgba(8, episode.steps)) for rgba in current)
    past = [rgba for width, rgba in geoms if width == PAST_WIDTH_PX]
    first, second = past[0], past[-1]  # chunks predicted at steps 0 and 4: earlier colour, fainter
    assert np.allclose(first[:3], time_rgba(0, episode.steps)[:3]) and first[3] < second[3] == 1.0
    assert not np.allclose(time_rgba(0, episode.steps), time_rgba(8, episode.steps))


def test_a_forecast_that_closes_the_gripper_gets_a_marker() -> None:
    episode = straight_episode(chunk=4, executed=4, chunks=2)
    episode.forecasts[1].gripper_command[2] = 0.0
    assert not any(np.allclose(rgba, CLOSE_RGBA) for _, rgba in drawn(episode, step=1))
    assert any(np.allclose(rgba, CLOSE_RGBA) for _, rgba in drawn(episode, step=5))
