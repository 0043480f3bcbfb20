"""Everything written for one whisker episode, in one folder, with the mode in every file name.

``whiskers_<mode>.npz`` (the recording, reloadable), ``diagnostics.json`` (the checks and likely causes),
``summary_<mode>.png``, ``whiskers_<mode>.mp4`` (unless no video is asked for) and ``whiskers_<mode>.rrd``
(when a rerun recording is asked for).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mujoco

from libs.viz.diagnostics import Finding, diagnose
from libs.viz.summary_plot import plot_whisker_summary
from libs.viz.video import VideoSettings, render_whisker_video
from libs.viz.whiskers import WhiskerEpisode

DIAGNOSTICS_FILE = "diagnostics.json"


@dataclass
class EpisodeOutputs:
    folder: Path
    findings: list[Finding]
    files: dict[str, Path] = field(default_factory=dict)


def whiskers_path(folder: Path, mode: str) -> Path:
    return folder / f"whiskers_{mode}.npz"


def write_episode_outputs(
    episode: WhiskerEpisode,
    model: mujoco.MjModel,
    folder: str | Path,
    *,
    action_stats: Mapping[str, Any] | None = None,
    action_names: Sequence[str] | None = None,
    video: VideoSettings | None = None,
    rrd: bool = False,
    bowl_radius_m: float | None = None,
    progress: Any = None,
    failure: str | None = None,
) -> EpisodeOutputs:
    """Saves the recording, runs the diagnostics and writes the plots/video/rrd asked for.

    ``video=None`` skips the MP4 (the costly part: a CPU render per step and view). ``failure`` is the
    episode's failure line (``EpisodeRecord.failure_detail``), shown in the summary and diagnostics.json.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    mode = episode.mode
    files: dict[str, Path] = {"whiskers": episode.save(whiskers_path(folder, mode))}
    findings = diagnose(episode, action_stats, action_names)
    files["diagnostics"] = folder / DIAGNOSTICS_FILE
    files["diagnostics"].write_text(
        json.dumps(
            {
                "policy": episode.policy,
                "checkpoint_id": episode.checkpoint_id,
                "seed": episode.seed,
                "outcome": episode.outcome,
                "whisker_mode": episode.mode_label,
                "failure": failure,
                "likely_causes": [f.name for f in findings if f.flagged],
                "checks": [f.to_dict() for f in findings],
            },
            indent=2,
        )
        + "\n"
    )
    files["summary"] = plot_whisker_summary(
        episode,
        folder / f"summary_{mode}.png",
        action_stats=action_stats,
        findings=findings,
        bowl_radius_m=bowl_radius_m,
        failure=failure,
    )
    if video is not None:
        files["video"] = render_whisker_video(
            episode, model, folder / f"whiskers_{mode}.mp4", video, progress
        )
    if rrd:
        from libs.viz.rerun_log import write_rerun_recording

        files["rrd"] = write_rerun_recording(episode, folder / f"whiskers_{mode}.rrd")
    return EpisodeOutputs(folder, findings, files)
