"""An evaluated episode: played by ``libs.sim.play`` with every contract check and the simulator's signals,
scored as an ``EpisodeRecord`` (a failed one with its failure named).

``evaluate_episode`` plays one; ``evaluate_lockstep`` plays several of one policy together, one batched
inference for the observations due. Extra observers (whiskers, a recorder) ride along.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from libs.evaluation.results.episode_record import EpisodeRecord, RecordLabel
from libs.sim.episode_signals import EpisodeSignals
from libs.sim.failures import diagnose_failures, failure_summary
from libs.sim.play.episode import CONTRACT_VIOLATION, EpisodeStart, PlayedEpisode, play_episode
from libs.sim.play.evaluable_env import EvaluableEnv
from libs.sim.play.lockstep import play_lockstep
from libs.sim.play.observers import ChunkKeeper, ContractChecks, EpisodeObserver, SimulatorSignals


@dataclass
class EpisodeResult:
    record: EpisodeRecord
    #: (env step at inference, chunk) for every inference, when kept.
    chunks: list[tuple[int, np.ndarray]] = field(default_factory=list)


class _Evaluation:
    """The observers every evaluated episode has, and its record once played."""

    def __init__(
        self,
        action_stats: Mapping[str, Any] | None,
        label: RecordLabel,
        keep_chunks: bool,
        extra: Sequence[EpisodeObserver],
    ) -> None:
        self.label = label
        self.signals = SimulatorSignals()
        self.chunks = ChunkKeeper() if keep_chunks else None
        kept = [self.chunks] if self.chunks is not None else []
        self.observers: list[EpisodeObserver] = [ContractChecks(action_stats), self.signals, *kept, *extra]

    def result(self, played: PlayedEpisode) -> EpisodeResult:
        record = episode_record(played, self.label, self.signals.signals)
        return EpisodeResult(record, self.chunks.chunks if self.chunks is not None else [])


def evaluate_episode(
    policy: Any,
    env: EvaluableEnv,
    start: EpisodeStart | int,
    *,
    action_stats: Mapping[str, Any] | None = None,
    label: RecordLabel | None = None,
    observers: Sequence[EpisodeObserver] = (),
    keep_chunks: bool = False,
) -> EpisodeResult:
    """One episode from ``env.reset(seed)``; ``action_stats`` (the dataset's ``action`` stats) enables the
    de-normalisation check. Raises ContractViolation when the policy breaks its contract (an unsafe chunk
    instead ends the episode as ``contract_violation``)."""
    evaluation = _Evaluation(action_stats, label or RecordLabel(), keep_chunks, observers)
    return evaluation.result(play_episode(policy, env, start, evaluation.observers))


def evaluate_lockstep(
    policy: Any,
    envs: Sequence[EvaluableEnv],
    starts: Sequence[EpisodeStart],
    *,
    action_stats: Mapping[str, Any] | None = None,
    labels: Sequence[RecordLabel] | None = None,
    keep_chunks: bool = False,
) -> list[EpisodeResult]:
    """``starts[i]`` played in ``envs[i]``, all together (``libs.sim.play.lockstep``); results in order."""
    labels = labels if labels is not None else [RecordLabel() for _ in starts]
    evaluations = [_Evaluation(action_stats, label, keep_chunks, ()) for label in labels]
    played = play_lockstep(policy, envs, starts, [evaluation.observers for evaluation in evaluations])
    return [evaluation.result(episode) for evaluation, episode in zip(evaluations, played, strict=True)]


def episode_record(
    played: PlayedEpisode, label: RecordLabel, signals: EpisodeSignals | None = None
) -> EpisodeRecord:
    """The record of a played episode; with its ``signals``, a failed one is diagnosed."""
    figures = played.figures
    outcome = played.outcome
    diagnosed = signals is not None and outcome not in ("success", CONTRACT_VIOLATION)
    failures = diagnose_failures(signals) if diagnosed else []
    latency_ms = np.asarray(played.latencies_s) * 1000.0
    ik_error = figures.ik_error_mm_mean
    grid_cell = label.grid_cell
    return EpisodeRecord(
        checkpoint_id=label.checkpoint_id,
        seed=int(played.seed),
        step=label.step,
        outcome=outcome,
        steps=int(figures.steps),
        picked=bool(figures.picked),
        pick_step=None if figures.pick_step is None else int(figures.pick_step),
        max_block_height_m=float(figures.max_block_height_m),
        ik_failures=int(figures.ik_failures or 0),
        ik_error_mm_mean=None if ik_error is None or not np.isfinite(ik_error) else float(ik_error),
        inferences=len(played.latencies_s),
        latency_mean_ms=float(latency_ms.mean()) if latency_ms.size else 0.0,
        latency_p95_ms=float(np.percentile(latency_ms, 95)) if latency_ms.size else 0.0,
        wall_time_s=float(played.wall_time_s),
        action_space=played.action_space,
        block_x=float(played.block_start[0]),
        block_y=float(played.block_start[1]),
        grid_col=None if grid_cell is None else int(grid_cell[0]),
        grid_row=None if grid_cell is None else int(grid_cell[1]),
        violation=played.violation,
        progress=float(figures.progress),
        failure=failures[0].kind if failures else None,
        failure_value=failures[0].value if failures else None,
        failure_detail=failure_summary(failures, signals.control_hz) if signals and failures else None,
        arm=label.arm,
    )
