"""Test helpers shared by the evaluation tests (kept out of any test module, as the import rules ask)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from libs.evaluation.results.episode_record import RECORD_FIELDS, EpisodeRecord


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


def write_store_with_old_arm_ids(path: Path, perturbations: list[str] | None) -> None:
    """A store as sweeps wrote it before the arm had a column: an arm's rows under ``<id>+<arm>``, keyed by
    (checkpoint_id, seed)."""
    names = [name for name in RECORD_FIELDS if name != "arm"]
    connection = sqlite3.connect(path)
    with connection:
        connection.execute(f"CREATE TABLE episodes ({', '.join(names)}, PRIMARY KEY (checkpoint_id, seed))")
        connection.execute("CREATE TABLE sweep_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
        if perturbations is not None:
            connection.execute(
                "INSERT INTO sweep_settings VALUES ('perturbations', ?)", [json.dumps(perturbations)]
            )
        rows = [
            record("000100", 0, "success"),
            record("000100", 1, "timeout"),
            record("000100", 0, "timeout", checkpoint_id="000100+dim"),
            record("000100", 1, "success", checkpoint_id="000100+dim"),
            record("000200", 0, "timeout", checkpoint_id="000200+fog"),  # its control not stored yet
            record("000300", 0, "success", checkpoint_id="000300+v2"),  # a '+' in a checkpoint's own id
        ]
        for row in rows:
            values = row.to_dict()
            connection.execute(
                f"INSERT INTO episodes VALUES ({', '.join('?' for _ in names)})", [values[n] for n in names]
            )
    connection.close()
