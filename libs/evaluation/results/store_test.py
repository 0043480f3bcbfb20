from __future__ import annotations

from pathlib import Path

import pytest

from libs.evaluation.fixtures import record, write_store_with_old_arm_ids
from libs.evaluation.results.store import ResultsStore, ResultsStoreError


def test_append_is_idempotent_per_checkpoint_arm_and_seed(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "episodes.sqlite") as store:
        assert store.append(record("000100", 0, "success"))
        assert not store.append(record("000100", 0, "timeout"))  # a re-run never duplicates
        assert store.append(record("000100", 1, "never_picked_up", picked=False))
        assert store.append(record("000100", 0, "timeout", arm="dim"))  # an arm's seed is its own episode
        assert not store.append(record("000100", 0, "success", arm="dim"))
    with ResultsStore(tmp_path / "episodes.sqlite") as store:  # survives a restart
        assert store.count() == 3
        assert store.done_keys() == {("000100", "", 0), ("000100", "", 1), ("000100", "dim", 0)}
        first = store.records()[0]
        assert first == record("000100", 0, "success")
        assert isinstance(first.picked, bool)


def test_settings_must_match_to_resume(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "episodes.sqlite") as store:
        store.bind_settings({"policy": "scripted", "base_seed": 0})
        store.bind_settings({"policy": "scripted", "base_seed": 0})
        with pytest.raises(ResultsStoreError, match="use a new --out folder"):
            store.bind_settings({"policy": "scripted", "base_seed": 5})


def test_corrupt_store_gives_one_line(tmp_path: Path) -> None:
    path = tmp_path / "episodes.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ResultsStoreError, match="not a readable results store"):
        ResultsStore(path)


def test_a_store_from_before_a_field_existed_resumes(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "episodes.sqlite"
    with sqlite3.connect(path) as connection:  # an older store: no progress column
        connection.execute(
            "CREATE TABLE episodes (checkpoint_id, seed, step, outcome, steps, picked, pick_step, "
            "max_block_height_m, ik_failures, ik_error_mm_mean, inferences, latency_mean_ms, latency_p95_ms, "
            "wall_time_s, action_space, block_x, block_y, grid_col, grid_row, violation, "
            "PRIMARY KEY (checkpoint_id, seed))"
        )
        connection.execute(
            "INSERT INTO episodes VALUES ('000100', 0, 100, 'success', 100, 1, 40, 0.08, 0, NULL, 10, 2.0, "
            "3.0, 1.0, 'joint', NULL, NULL, NULL, NULL, NULL)"
        )
    with ResultsStore(path) as store:
        assert store.append(record("000100", 1, "success", progress=1.0))
        old, new = store.records()
        assert old.progress is None and new.progress == 1.0


def test_a_store_with_old_arm_ids_is_keyed_by_arm_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "episodes.sqlite"
    write_store_with_old_arm_ids(path, ["dim", "fog"])
    with ResultsStore(path) as store:
        assert store.count() == 6  # every row kept
        assert store.done_keys() == {
            ("000100", "", 0),
            ("000100", "", 1),
            ("000100", "dim", 0),
            ("000100", "dim", 1),
            ("000200", "fog", 0),
            ("000300+v2", "", 0),
        }
        dim = [r for r in store.records() if r.arm == "dim"]
        assert [(r.checkpoint_id, r.seed, r.outcome) for r in dim] == [
            ("000100", 0, "timeout"),
            ("000100", 1, "success"),
        ]
        assert not store.append(record("000100", 1, "timeout", arm="dim"))  # already stored, under its arm
        assert store.append(record("000100", 2, "timeout", arm="dim"))
        store.bind_settings({"perturbations": ["dim", "fog"]})  # the settings are the sweep's, unchanged
    with ResultsStore(path) as store:  # opened again: already keyed by arm
        assert store.count() == 7


def test_old_arm_ids_split_where_the_control_is_stored_without_declared_arms(tmp_path: Path) -> None:
    path = tmp_path / "episodes.sqlite"
    write_store_with_old_arm_ids(path, None)
    with ResultsStore(path) as store:
        keys = store.done_keys()
    assert ("000100", "dim", 1) in keys and ("000200+fog", "", 0) in keys and ("000300+v2", "", 0) in keys
