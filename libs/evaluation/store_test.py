from __future__ import annotations

from pathlib import Path

import pytest

from libs.evaluation.metrics_test import record
from libs.evaluation.store import ResultsStore, ResultsStoreError


def test_append_is_idempotent_per_checkpoint_and_seed(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "episodes.sqlite") as store:
        assert store.append(record("000100", 0, "success"))
        assert not store.append(record("000100", 0, "timeout"))  # a re-run never duplicates
        assert store.append(record("000100", 1, "never_picked_up", picked=False))
    with ResultsStore(tmp_path / "episodes.sqlite") as store:  # survives a restart
        assert store.count() == 2
        assert store.done_keys() == {("000100", 0), ("000100", 1)}
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
