"""The whisker video: the episode replayed from its recorded states with the predicted paths drawn in 3-D.

Each frame shows the overhead view and a free 3-D view side by side, under a header naming the policy,
seed, outcome and the whisker mode. Paths are MuJoCo user geoms (``mjv_connector`` GL lines appended to the
renderer's ``mjvScene`` after ``update_scene``), not pixels drawn afterwards: drawn in the scene they are
hidden behind the arm and the bowl where they should be, look the same from any camera, and need no
projection code. Drawn as the summary PNG draws them (``libs.viz.summary_plot``): every chunk's forecast
is a thick line coloured by the step at which it was predicted (the same viridis ramp for time), the chunk
in force thickest and the earlier ones fading with age; the path actually taken is a thin black line; a red
dot marks where the forecast in force commands the gripper closed (the executed gripper is the arm itself).

Rendering happens after the episode, from the qpos recorded at every step, so recording whiskers stays
render-free (and cheap) and a saved ``whiskers.npz`` can be rendered again later.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import mujoco
import numpy as np

from libs.sim.physics import offscreen_renderer
from libs.viz.diagnostics import GRIPPER_CLOSE_THRESHOLD
from libs.viz.summary_plot import TIME_COLORMAP
from libs.viz.whiskers import WhiskerEpisode, WhiskerError
from scenes.so101.scene import BOWL_BODY

ACTUAL_RGBA = np.array([0.0, 0.0, 0.0, 1.0], dtype=np.float32)
CLOSE_RGBA = np.array([0.9, 0.1, 0.1, 1.0], dtype=np.float32)
#: Line widths (pixels): forecasts prominent, the path taken thin. GL lines, not capsules: a few hundred
#: capsules made each CPU frame 3–5× slower.
CURRENT_WIDTH_PX = 5
PAST_WIDTH_PX = 3
ACTUAL_WIDTH_PX = 1
#: Opacity of the oldest drawn chunk (the newest past chunk is opaque).
OLDEST_PAST_ALPHA = 0.25
CLOSE_MARKER_RADIUS_M = 0.005
#: Where the overhead camera of the default scene is (``libs.sim.scene_config.default_cameras``): used as
#: an equivalent free camera when the env was built without it (policies that read no camera).
OVERHEAD_LOOKAT = (0.20, 0.0, 0.0)
OVERHEAD_HEIGHT_M = 0.55
OVERHEAD_FOVY_DEG = 52.0
#: The free 3-D view: from the front-left of the workspace, 25° above the table.
FREE_LOOKAT = (0.19, 0.0, 0.05)
FREE_DISTANCE_M = 0.42
FREE_AZIMUTH_DEG = 150.0
FREE_ELEVATION_DEG = -25.0
HEADER_HEIGHT = 30
PATH_GEOM = mujoco.mjtGeom.mjGEOM_LINE
CODEC_PREFERENCE: tuple[str, ...] = ("libx264", "mpeg4")


@dataclass(frozen=True)
class VideoSettings:
    """Size of each view (pixels), frame rate, and how many earlier chunks stay drawn."""

    height: int = 240
    width: int = 320
    fps: int = 30
    past_chunks: int = 8
    views: tuple[str, ...] = ("overhead", "free")

    def __post_init__(self) -> None:
        if self.height < 16 or self.width < 16 or self.height % 2 or self.width % 2:
            raise WhiskerError(
                f"video size {self.height}x{self.width}: use even sizes of at least 16 (e.g. 240x320)"
            )
        unknown = [view for view in self.views if view not in ("overhead", "free")]
        if unknown or not self.views:
            raise WhiskerError(f"video views {self.views}: use 'overhead' and/or 'free'")


def view_camera(model: mujoco.MjModel, view: str) -> mujoco.MjvCamera:
    """The scene's own overhead camera when the model has it, else equivalent free cameras."""
    camera = mujoco.MjvCamera()
    if view == "overhead" and mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, "overhead") >= 0:
        camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
        camera.fixedcamid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, "overhead")
        return camera
    camera.type = mujoco.mjtCamera.mjCAMERA_FREE
    if view == "overhead":
        # A free camera has the model's global fovy: move it so the table area framed is the same.
        fovy = float(model.vis.global_.fovy)
        scale = math.tan(math.radians(OVERHEAD_FOVY_DEG) / 2) / math.tan(math.radians(fovy) / 2)
        camera.lookat[:] = OVERHEAD_LOOKAT
        camera.distance = OVERHEAD_HEIGHT_M * scale
        camera.azimuth = 0.0  # image up = +x, away from the robot, as the scene's overhead camera
        camera.elevation = -90.0
    else:
        camera.lookat[:] = FREE_LOOKAT
        camera.distance = FREE_DISTANCE_M
        camera.azimuth = FREE_AZIMUTH_DEG
        camera.elevation = FREE_ELEVATION_DEG
    return camera


def _add_segment(
    scene: mujoco.MjvScene, start: np.ndarray, end: np.ndarray, width: float, rgba: np.ndarray
) -> None:
    if scene.ngeom >= scene.maxgeom:
        return
    if float(np.linalg.norm(end - start)) < 1e-6:
        return
    geom = scene.geoms[scene.ngeom]
    mujoco.mjv_initGeom(geom, PATH_GEOM, np.zeros(3), np.zeros(3), np.eye(3).ravel(), rgba)
    mujoco.mjv_connector(geom, PATH_GEOM, width, start, end)
    scene.ngeom += 1


def add_path(scene: mujoco.MjvScene, points: np.ndarray, width: float, rgba: np.ndarray) -> None:
    """A polyline (GL lines ``width`` pixels wide) through ``points`` (N, 3); NaN rows are skipped."""
    points = np.asarray(points, dtype=np.float64)
    for start, end in itertools.pairwise(points):
        if np.all(np.isfinite(start)) and np.all(np.isfinite(end)):
            _add_segment(scene, start, end, width, rgba)


def add_sphere(scene: mujoco.MjvScene, position: np.ndarray, radius: float, rgba: np.ndarray) -> None:
    if scene.ngeom >= scene.maxgeom:
        return
    geom = scene.geoms[scene.ngeom]
    size = np.array([radius, radius, radius])
    mujoco.mjv_initGeom(
        geom, mujoco.mjtGeom.mjGEOM_SPHERE, size, np.asarray(position, float), np.eye(3).ravel(), rgba
    )
    scene.ngeom += 1


def time_rgba(env_step: int, episode_steps: int) -> np.ndarray:
    """The time ramp's colour for a chunk predicted at ``env_step`` (the summary PNG's ramp)."""
    from matplotlib import colormaps

    fraction = env_step / max(1, episode_steps)
    return np.asarray(colormaps[TIME_COLORMAP](min(1.0, max(0.0, fraction))), dtype=np.float32)


def draw_whiskers(scene: mujoco.MjvScene, episode: WhiskerEpisode, step: int, past_chunks: int = 8) -> None:
    """The whiskers in force at env step ``step`` and the path taken up to it, into ``scene``."""
    actual = np.asarray(episode.actual_ee[: step + 1])
    if len(actual) > 1:
        add_path(scene, actual, ACTUAL_WIDTH_PX, ACTUAL_RGBA)
    current = episode.forecast_at(step)
    if current is None:
        return
    for age in range(past_chunks, 0, -1):
        index = current - age
        if index < 0:
            continue
        forecast = episode.forecasts[index]
        rgba = time_rgba(forecast.env_step, episode.steps)
        rgba[3] = 1.0 - (1.0 - OLDEST_PAST_ALPHA) * (age - 1) / max(1, past_chunks - 1)
        add_path(scene, np.vstack([forecast.ee_start, forecast.ee_path]), PAST_WIDTH_PX, rgba)
    forecast = episode.forecasts[current]
    rgba = time_rgba(forecast.env_step, episode.steps)
    add_path(scene, np.vstack([forecast.ee_start, forecast.ee_path]), CURRENT_WIDTH_PX, rgba)
    closing = np.flatnonzero(forecast.gripper_command < GRIPPER_CLOSE_THRESHOLD)
    if closing.size:
        add_sphere(scene, forecast.ee_path[closing[0]], CLOSE_MARKER_RADIUS_M, CLOSE_RGBA)


def header_image(text: str, width: int, height: int = HEADER_HEIGHT) -> np.ndarray:
    """A white strip: ``text`` above the colour legend (rendered once per video with matplotlib)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    dpi = 100
    figure = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    canvas = FigureCanvasAgg(figure)
    figure.text(0.005, 0.72, text, va="center", ha="left", fontsize=6.5)
    black = np.array([0.0, 0.0, 0.0])
    ramp = [("\u25a0", time_rgba(k, 4)[:3]) for k in range(5)]
    legend = (
        ("forecasts (thick), by the step predicted: early", black),
        *ramp,
        ("late; older chunks fade", black),
        ("\u2014 path taken (thin)", ACTUAL_RGBA[:3]),
        ("\u25cf predicted close", CLOSE_RGBA[:3]),
    )
    x = 0.005
    for label, rgb in legend:
        item = figure.text(x, 0.25, label, va="center", ha="left", fontsize=6.5, color=rgb)
        canvas.draw()
        gap = 0.004 if len(label) == 1 else 0.02
        x += item.get_window_extent().width / width + gap
    canvas.draw()
    image = np.asarray(canvas.buffer_rgba())[..., :3]
    return np.ascontiguousarray(image[:height, :width])


class VideoWriter:
    """H.264 (or MPEG-4 where this av build lacks libx264) MP4 writer fed RGB frames."""

    def __init__(self, path: Path, width: int, height: int, fps: int, title: str = "") -> None:
        codec = next((name for name in CODEC_PREFERENCE if name in av.codecs_available), None)
        if codec is None:
            raise WhiskerError(
                f"no MP4 encoder ({', '.join(CODEC_PREFERENCE)}) in PyAV {av.__version__}: "
                "install an av wheel with libx264"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        self.container = av.open(str(path), mode="w")
        if title:
            self.container.metadata["title"] = title
        self.stream = self.container.add_stream(codec, rate=Fraction(fps, 1))
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            self.stream.options = {"crf": "23", "preset": "veryfast"}

    def write(self, frame: np.ndarray) -> None:
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        for packet in self.stream.encode(video_frame):
            self.container.mux(packet)

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()


def episode_title(episode: WhiskerEpisode) -> str:
    policy = episode.checkpoint_id or episode.policy or "policy"
    return (
        f"{policy} · seed {episode.seed} · {episode.outcome or 'running'} · {episode.steps} steps · "
        f"whiskers {episode.mode_label}"
    )


def render_whisker_video(
    episode: WhiskerEpisode,
    model: mujoco.MjModel,
    path: str | Path,
    settings: VideoSettings | None = None,
    progress: Any = None,
) -> Path:
    """Writes the episode's whisker video (one frame per env step, reset included) to ``path``."""
    settings = settings or VideoSettings()
    path = Path(path)
    if not episode.actual_qpos:
        raise WhiskerError("this whisker episode has no recorded states: record it with WhiskerRecorder")
    if episode.actual_qpos[0].shape != (model.nq,):
        raise WhiskerError(
            f"whiskers were recorded with {episode.actual_qpos[0].shape[0]} qpos but the model has "
            f"{model.nq}: "
            "render with the scene the episode was recorded in"
        )
    data = mujoco.MjData(model)
    bowl = model.body(BOWL_BODY)
    if bowl.mocapid[0] >= 0:
        data.mocap_pos[bowl.mocapid[0]] = episode.bowl_position
    cameras = [view_camera(model, view) for view in settings.views]
    renderer = offscreen_renderer(model, settings.height, settings.width)
    # The arm drawn see-through, so the paths inside and behind the gripper stay visible.
    options = mujoco.MjvOption()
    options.flags[mujoco.mjtVisFlag.mjVIS_TRANSPARENT] = True
    width = settings.width * len(cameras)
    title = episode_title(episode)
    header = header_image(title, width)
    writer = VideoWriter(path, width, settings.height + HEADER_HEIGHT, settings.fps, title=title)
    frame = np.empty((settings.height + HEADER_HEIGHT, width, 3), dtype=np.uint8)
    frame[:HEADER_HEIGHT] = header
    try:
        for step, qpos in enumerate(episode.actual_qpos):
            data.qpos[:] = qpos
            mujoco.mj_forward(model, data)
            for view, camera in enumerate(cameras):
                renderer.update_scene(data, camera=camera, scene_option=options)
                draw_whiskers(renderer.scene, episode, step, settings.past_chunks)
                columns = slice(view * settings.width, (view + 1) * settings.width)
                frame[HEADER_HEIGHT:, columns] = renderer.render()
            writer.write(frame)
            if progress is not None:
                progress.update(1)
    finally:
        writer.close()
        renderer.close()
    return path
