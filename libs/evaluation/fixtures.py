"""Test helpers shared by the evaluation tests (kept out of any test module, as the import rules ask)."""

from __future__ import annotations

from libs.evaluation.results.episode_record import EpisodeRecord


def record(checkpoint: str, seed: int, outcome: str, picked: bool = True, **changes) -> EpisodeRecord:
    """An episode record with plausible figures; ``changes`` overrides any field."""
    values = dict(
        checkpoint_id=checkpoint,
        seed=seed,
        step=int(checkpoint),
        outcome=outcome,
        steps=100 + seed,
        picked=picked,
        pick_step=40 if picked else None,
        max_block_height_m=0.08 if picked else 0.0,
        ik_failures=0,
        ik_error_mm_mean=None,
        inferences=10,
        latency_mean_ms=2.0,
        latency_p95_ms=3.0,
        wall_time_s=1.0,
        action_space="joint",
    )
    values.update(changes)
    return EpisodeRecord(**values)
