"""Optional rerun (``rerun-sdk``) recording of a whisker episode, to scrub through it step by step.

Timeline ``step`` (env steps); entities: ``world/path_taken`` (the path so far), ``world/forecast/current``
(the chunk in force), ``world/forecast/past`` (earlier chunks), ``world/block``, ``world/bowl``, and
scalars ``gripper/command``, ``gripper/opening``, ``gripper/predicted_next``. Open with ``rerun FILE.rrd``.

rerun is imported only here and only when a recording is asked for: it is in every resolve's lockfile,
but a plain environment may lack it, which gives one line naming the fix (``RerunUnavailableError``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from libs.viz.whiskers import WhiskerEpisode, WhiskerError

APPLICATION_ID = "so101lab_whiskers"
GREEN = (25, 217, 51)
BLUE = (51, 115, 255)
ORANGE = (255, 140, 0)
RED = (214, 39, 40)


class RerunUnavailableError(WhiskerError):
    """rerun-sdk is not installed; the message names the fix."""


def import_rerun() -> Any:
    try:
        import rerun
    except ImportError as error:
        raise RerunUnavailableError(
            f"rerun-sdk is not installed here ({error}): run through Pants (`./pants run "
            "services/eval:whiskers`, whose resolves lock rerun-sdk) or `pip install rerun-sdk`, or drop "
            "--rrd"
        ) from None
    return rerun


def write_rerun_recording(episode: WhiskerEpisode, path: str | Path, past_chunks: int = 8) -> Path:
    """Writes ``path`` (.rrd) with the episode on a ``step`` timeline."""
    rr = import_rerun()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recording = rr.RecordingStream(
        APPLICATION_ID, recording_id=f"{episode.checkpoint_id or episode.policy}-{episode.seed}"
    )
    recording.save(path)
    recording.log("world", rr.ViewCoordinates.RIGHT_HAND_Z_UP, static=True)
    recording.log(
        "description",
        rr.TextDocument(
            f"policy {episode.checkpoint_id or episode.policy}, seed {episode.seed}, "
            f"outcome {episode.outcome}, "
            f"whiskers {episode.mode_label}"
        ),
        static=True,
    )
    recording.log("world/bowl", rr.Points3D([episode.bowl_position], colors=[BLUE], radii=0.04), static=True)
    actual = np.asarray(episode.actual_ee).reshape(-1, 3)
    blocks = np.asarray(episode.actual_block).reshape(-1, 3)
    executed = np.asarray(episode.executed_actions)
    for step in range(len(actual)):
        recording.set_time("step", sequence=step)
        recording.log("world/path_taken", rr.LineStrips3D([actual[: step + 1]], colors=[ORANGE], radii=0.002))
        recording.log("world/block", rr.Points3D([blocks[step]], colors=[RED], radii=0.0125))
        recording.log("gripper/opening", rr.Scalars(float(episode.actual_gripper[step])))
        if step > 0 and len(executed) >= step:
            recording.log("gripper/command", rr.Scalars(float(executed[step - 1, -1])))
        current = episode.forecast_at(step)
        if current is None:
            continue
        forecast = episode.forecasts[current]
        if forecast.env_step == step:
            recording.log(
                "world/forecast/current",
                rr.LineStrips3D(
                    [np.vstack([forecast.ee_start, forecast.ee_path])], colors=[GREEN], radii=0.003
                ),
            )
            past = episode.forecasts[max(0, current - past_chunks) : current]
            recording.log(
                "world/forecast/past",
                rr.LineStrips3D(
                    [np.vstack([f.ee_start, f.ee_path]) for f in past] or [np.zeros((0, 3))],
                    colors=[BLUE],
                    radii=0.0015,
                ),
            )
            recording.log("gripper/predicted_next", rr.Scalars(float(forecast.gripper_command[0])))
    recording.flush()
    _disconnect(recording)
    return path


def _disconnect(recording: Any) -> None:
    disconnect = getattr(recording, "disconnect", None)
    if callable(disconnect):
        disconnect()
