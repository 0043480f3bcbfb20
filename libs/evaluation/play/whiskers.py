"""Episodes played with whiskers recording (an observer of the episode loop): ``--whiskers N`` on the sweep
and the whiskers command (``services/eval/whiskers.py``).

After the sweep's episodes are stored, N of each checkpoint's episodes (and of each of its perturbation
arms: its failures first, then in seed order, so the whiskers go where there is something to explain) are
played again in this process with the sweep's own worker — same env, scene, policy load and contract
checks — with whiskers recording. Each gets ``whiskers/<checkpoint>/seed_<seed>/`` (an arm's
``whiskers/<checkpoint>/<arm>/seed_<seed>/``: video, summary PNG, recording, diagnostics.json), and the
report gets a "likely causes" section: per checkpoint and check, in how many of the N episodes it fired.
A resumed sweep reuses the recordings already on disk (and their videos).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from libs.evaluation.plan.checkpoints import file_safe_id, target_name
from libs.evaluation.plan.tasks import EpisodeTask
from libs.evaluation.play.episode_worker import EpisodeWorker
from libs.evaluation.play.evaluated_episode import EpisodeResult, evaluate_episode
from libs.evaluation.results.report_section import ReportSection
from libs.sim.play.evaluable_env import EvaluableEnv
from libs.viz.diagnostics import (
    CHECK_NAMES,
    CHUNKS_DISAGREE_M,
    DOES_NOT_MOVE_M,
    DOES_NOT_MOVE_PERCENTILE,
    GRIPPER_CLOSE_THRESHOLD,
    MEAN_BAND_STD,
    MEAN_REGRESSION_FRACTION,
    NEVER_APPROACHES_M,
    OUT_OF_RANGE_FRACTION,
    OUT_OF_RANGE_MARGIN,
    Finding,
    format_value,
    likely_causes,
    summarize_findings,
)
from libs.viz.episode_outputs import EpisodeOutputs, whiskers_path, write_episode_outputs
from libs.viz.video import VideoSettings
from libs.viz.whiskers import MODE_LABELS, WhiskerEpisode, WhiskerError, WhiskerRecorder, check_mode

WHISKERS_DIR = "whiskers"
SECTION_KEY = "whisker_diagnostics"
SECTION_TITLE = "Whisker diagnostics (likely causes)"


@dataclass
class WhiskerRun:
    checkpoint_id: str
    seed: int
    stored_outcome: str | None
    outcome: str | None
    #: None when the episode ended before any chunk could be simulated (its first chunk was unsafe).
    outputs: EpisodeOutputs | None
    #: The perturbation arm it was played under ("" for the checkpoint's control).
    arm: str = ""

    @property
    def name(self) -> str:
        return target_name(self.checkpoint_id, self.arm)


class EpisodeEndedBeforeWhiskers(WhiskerError):
    """The episode ended before its first chunk could be forecast (that chunk was unsafe)."""

    def __init__(self, message: str, result: EpisodeResult) -> None:
        super().__init__(message)
        self.result = result


def play_with_whiskers(
    worker: EpisodeWorker, task: EpisodeTask, mode: str = "dynamic"
) -> tuple[EpisodeResult, WhiskerEpisode]:
    """``task`` played by ``worker`` (its env, scene, policy and contract checks) with every predicted
    chunk forward-simulated: (the evaluated episode, the whiskers)."""
    policy, _action_stats, _env = worker.prepared(task.target)
    recorder = WhiskerRecorder(mode, policy=task.target.policy_uri, checkpoint_id=task.target.checkpoint_id)
    result = worker.play(task, observers=[recorder])
    try:
        return result, recorder.finish(result.record.outcome, policy.spec.n_action_steps)
    except WhiskerError as error:
        raise EpisodeEndedBeforeWhiskers(str(error), result) from error


def record_whisker_episode(
    policy: Any, env: EvaluableEnv, seed: int, *, mode: str = "dynamic", policy_name: str = ""
) -> tuple[EpisodeResult, WhiskerEpisode]:
    """One evaluated episode of ``policy`` in a given ``env``, with whiskers (tests and notebooks that build
    their own env; commands go through a worker: ``play_with_whiskers``)."""
    recorder = WhiskerRecorder(mode, policy=policy_name)
    result = evaluate_episode(policy, env, seed, observers=[recorder])
    return result, recorder.finish(result.record.outcome, policy.spec.n_action_steps)


def write_whisker_outputs(
    episode: WhiskerEpisode,
    env: Any,
    folder: Path,
    action_stats: Mapping[str, Any] | None,
    *,
    video: VideoSettings | None,
    failure: str | None,
    rrd: bool = False,
    progress: Any = None,
) -> EpisodeOutputs:
    """The episode's video, summary, recording and diagnostics in ``folder``, drawn in the env it was
    played in (its model, action names and bowl)."""
    return write_episode_outputs(
        episode,
        env.model,
        folder,
        action_stats=action_stats,
        action_names=env.action_names,
        video=video,
        rrd=rrd,
        bowl_radius_m=env.scene.bowl_inner_radius_m,
        progress=progress,
        failure=failure,
    )


def choose_tasks(
    tasks: Sequence[Any], per_checkpoint: int, outcomes: Mapping[tuple[str, str, int], str]
) -> list[Any]:
    """Per checkpoint (and per perturbation arm of it), ``per_checkpoint`` of its tasks: stored failures
    first, then the rest, by seed."""
    by_checkpoint: dict[tuple[str, str], list[Any]] = {}
    for task in tasks:
        by_checkpoint.setdefault((task.target.checkpoint_id, task.arm), []).append(task)
    chosen = []
    for group in by_checkpoint.values():
        ranked = sorted(group, key=lambda task: (outcomes.get(task.key) == "success", task.seed))
        chosen.extend(ranked[:per_checkpoint])
    return chosen


def record_sweep_whiskers(
    tasks: Sequence[Any],
    per_checkpoint: int,
    worker: EpisodeWorker,
    out_dir: str | Path,
    *,
    outcomes: Mapping[tuple[str, str, int], str] | None = None,
    mode: str = "dynamic",
    video: VideoSettings | None = None,
    progress: bool = True,
) -> tuple[list[WhiskerRun], ReportSection]:
    """Records the whisker episodes of a sweep into ``out_dir/whiskers`` (``<checkpoint>/seed_<seed>/``, an
    arm's under ``<checkpoint>/<arm>/seed_<seed>/``) and returns them with the report section."""
    mode = check_mode(mode)
    video = video or VideoSettings()
    outcomes = outcomes or {}
    chosen = choose_tasks(tasks, per_checkpoint, outcomes)
    root = Path(out_dir) / WHISKERS_DIR
    runs: list[WhiskerRun] = []
    for task in tqdm(chosen, desc="whiskers", unit="episode", disable=not progress, dynamic_ncols=True):
        checkpoint_id, arm = task.target.checkpoint_id, task.arm
        folder = root / file_safe_id(checkpoint_id) / (file_safe_id(arm) if arm else "") / f"seed_{task.seed}"
        _, action_stats, env = worker.prepared(task.target)
        saved = whiskers_path(folder, mode)
        failure = None
        if saved.is_file():
            episode = WhiskerEpisode.load(saved)
        else:
            try:
                result, episode = play_with_whiskers(worker, task, mode)
                failure = result.record.failure_detail
            except EpisodeEndedBeforeWhiskers as ended:
                outcome = ended.result.record.outcome
                runs.append(WhiskerRun(checkpoint_id, task.seed, outcomes.get(task.key), outcome, None, arm))
                continue
        has_video = (folder / f"whiskers_{mode}.mp4").is_file()
        outputs = write_whisker_outputs(
            episode, env, folder, action_stats, video=None if has_video else video, failure=failure
        )
        if has_video:
            outputs.files["video"] = folder / f"whiskers_{mode}.mp4"
        runs.append(
            WhiskerRun(checkpoint_id, task.seed, outcomes.get(task.key), episode.outcome, outputs, arm)
        )
    return runs, report_section(runs, mode, Path(out_dir))


def report_section(runs: Sequence[WhiskerRun], mode: str, out_dir: Path) -> ReportSection:
    by_checkpoint: dict[str, list[WhiskerRun]] = {}  # by checkpoint (and arm) name
    for run in runs:
        by_checkpoint.setdefault(run.name, []).append(run)
    lines = [
        "Each checkpoint's failures first (then successes, by seed) were played again with every "
        f"predicted chunk "
        f"forward-simulated from a copy of the state — whiskers {MODE_LABELS[mode]}. A cell is "
        "*episodes flagged / episodes measured (median value)*; videos, plots and `diagnostics.json` are in "
        f"`{WHISKERS_DIR}/<checkpoint>/seed_<seed>/` (an arm's in `<checkpoint>/<arm>/seed_<seed>/`).",
        "",
        "| checkpoint | episodes | " + " | ".join(CHECK_NAMES) + " | likely causes |",
        "|" + "---|" * (len(CHECK_NAMES) + 3),
    ]
    data: dict[str, Any] = {"mode": MODE_LABELS[mode], "thresholds": thresholds(), "checkpoints": {}}
    for checkpoint_id, group in by_checkpoint.items():
        summaries = summarize_findings([run.outputs.findings for run in group if run.outputs is not None])
        cells = [
            f"{s.flagged}/{s.measured} ({format_value(s.median_value, s.unit)})" if s.measured else "n/a"
            for s in summaries
        ]
        causes = [s.name for s in summaries if s.flagged and 2 * s.flagged >= s.measured]
        lines.append(
            f"| {checkpoint_id} | {len(group)} | " + " | ".join(cells) + f" | {', '.join(causes) or 'none'} |"
        )
        data["checkpoints"][checkpoint_id] = {
            "checkpoint_id": group[0].checkpoint_id,
            "arm": group[0].arm,
            "likely_causes": causes,
            "checks": [summary.to_dict() for summary in summaries],
            "episodes": [episode_entry(run, out_dir) for run in group],
        }
    lines.append("")
    lines.append("A cause is listed when it fired in at least half of the checkpoint's whisker episodes.")
    lines.append("")
    for checkpoint_id, group in by_checkpoint.items():
        for run in group:
            entry = episode_entry(run, out_dir)
            links = ", ".join(
                f"[{name}]({path})" for name, path in entry["files"].items() if name != "whiskers"
            )
            note = (
                f" (replay ended {run.outcome}, the sweep's episode {run.stored_outcome}: the policy is not "
                "deterministic)"
                if run.stored_outcome and run.outcome != run.stored_outcome
                else ""
            )
            causes = ", ".join(entry["likely_causes"]) or "none found"
            if run.outputs is None:
                causes, links = (
                    "no whiskers: the first chunk was already unsafe (see contract violations)",
                    "",
                )
            lines.append(f"- {checkpoint_id} seed {run.seed}, {run.outcome}{note}: {causes} — {links}")
    lines.append("")
    lines.append("Thresholds: " + ", ".join(f"{name} {value}" for name, value in thresholds().items()) + ".")
    return ReportSection(key=SECTION_KEY, title=SECTION_TITLE, markdown="\n".join(lines), data=data)


def episode_entry(run: WhiskerRun, out_dir: Path) -> dict[str, Any]:
    findings: list[Finding] = run.outputs.findings if run.outputs is not None else []
    files = run.outputs.files if run.outputs is not None else {}
    return {
        "seed": run.seed,
        "outcome": run.outcome,
        "stored_outcome": run.stored_outcome,
        "likely_causes": [finding.name for finding in likely_causes(findings)],
        "checks": [finding.to_dict() for finding in findings],
        "files": {name: str(path.relative_to(out_dir)) for name, path in files.items()},
    }


def thresholds() -> dict[str, float]:
    return {
        "DOES_NOT_MOVE_M": DOES_NOT_MOVE_M,
        "DOES_NOT_MOVE_PERCENTILE": DOES_NOT_MOVE_PERCENTILE,
        "MEAN_BAND_STD": MEAN_BAND_STD,
        "MEAN_REGRESSION_FRACTION": MEAN_REGRESSION_FRACTION,
        "GRIPPER_CLOSE_THRESHOLD": GRIPPER_CLOSE_THRESHOLD,
        "CHUNKS_DISAGREE_M": CHUNKS_DISAGREE_M,
        "OUT_OF_RANGE_MARGIN": OUT_OF_RANGE_MARGIN,
        "OUT_OF_RANGE_FRACTION": OUT_OF_RANGE_FRACTION,
        "NEVER_APPROACHES_M": NEVER_APPROACHES_M,
    }
