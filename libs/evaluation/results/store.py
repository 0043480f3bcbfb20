"""Append-only results store: one SQLite row per (checkpoint, perturbation arm, seed), written the moment an
episode ends.

SQLite (stdlib) because each insert is one atomic transaction: a sweep killed at any instant leaves only
complete rows, and the primary key makes a re-run's duplicate insert a no-op, so resuming never double counts.
Only the sweep's driver process writes. A store written before the arm had a column (an arm's rows under
``<checkpoint id>+<arm>``, keyed by (checkpoint, seed)) is rewritten to the arm column when it is opened, in
one transaction, every row kept.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from libs.errors import LabError
from libs.evaluation.results.episode_record import RECORD_FIELDS, EpisodeRecord
from libs.report_html.legacy_arms import split_legacy_ids

STORE_FILE_NAME = "episodes.sqlite"
#: The episodes table's columns; the arm is never NULL (SQLite would let two NULL keys both in).
COLUMNS = ", ".join("arm TEXT NOT NULL DEFAULT ''" if name == "arm" else name for name in RECORD_FIELDS)
PRIMARY_KEY = ("checkpoint_id", "arm", "seed")


class ResultsStoreError(LabError, RuntimeError):
    """The results folder holds something this sweep cannot continue; the message names the fix."""


class ResultsStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # Readers (a report, a dashboard, `sqlite3`) may hold the file briefly: wait for them.
            self._connection = sqlite3.connect(self.path, timeout=60)
            self._connection.executescript(
                f"""
                CREATE TABLE IF NOT EXISTS episodes ({COLUMNS}, PRIMARY KEY ({", ".join(PRIMARY_KEY)}));
                CREATE TABLE IF NOT EXISTS sweep_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
                """
            )
            self._add_missing_columns()
            if self._primary_key() != PRIMARY_KEY:
                self._key_by_arm()
        except sqlite3.DatabaseError as error:
            raise ResultsStoreError(
                f"{self.path} is not a readable results store ({error}): pass a new --out folder"
            ) from error

    def _add_missing_columns(self) -> None:
        """A store written before a field existed gains its column (empty for the old rows)."""
        present = {row[1] for row in self._connection.execute("PRAGMA table_info(episodes)")}
        with self._connection:
            for name in RECORD_FIELDS:
                if name not in present:
                    self._connection.execute(f"ALTER TABLE episodes ADD COLUMN {name}")

    def _primary_key(self) -> tuple[str, ...]:
        columns = self._connection.execute("PRAGMA table_info(episodes)").fetchall()
        return tuple(row[1] for row in sorted(columns, key=lambda row: row[5]) if row[5])

    def _key_by_arm(self) -> None:
        """Rewrites an old store's table keyed by (checkpoint, arm, seed), each ``<id>+<arm>`` row split into
        its checkpoint id and arm (``libs.report_html.legacy_arms``): all or nothing."""
        settings = dict(self._connection.execute("SELECT name, value FROM sweep_settings").fetchall())
        declared = json.loads(settings.get("perturbations", "[]"))
        names = ", ".join(RECORD_FIELDS)
        rows = self._connection.execute(f"SELECT {names} FROM episodes").fetchall()
        split = split_legacy_ids((row[0] for row in rows), declared)
        at_id, at_arm = RECORD_FIELDS.index("checkpoint_id"), RECORD_FIELDS.index("arm")
        keyed = []
        for row in rows:
            values = list(row)
            values[at_id], values[at_arm] = split[row[at_id]]
            keyed.append(values)
        placeholders = ", ".join("?" for _ in RECORD_FIELDS)
        self._connection.execute("BEGIN")  # the table's DDL and rows in one transaction
        try:
            self._connection.execute(
                f"CREATE TABLE episodes_by_arm ({COLUMNS}, PRIMARY KEY ({', '.join(PRIMARY_KEY)}))"
            )
            self._connection.executemany(f"INSERT INTO episodes_by_arm VALUES ({placeholders})", keyed)
            self._connection.execute("DROP TABLE episodes")
            self._connection.execute("ALTER TABLE episodes_by_arm RENAME TO episodes")
        except BaseException:
            self._connection.rollback()
            raise
        self._connection.commit()

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def bind_settings(self, settings: Mapping[str, Any]) -> None:
        """Record the sweep's settings, or refuse to mix rows from a sweep with different ones."""
        stored = dict(self._connection.execute("SELECT name, value FROM sweep_settings").fetchall())
        wanted = {name: json.dumps(value, sort_keys=True) for name, value in settings.items()}
        if stored:
            changed = sorted(
                name for name in wanted.keys() | stored.keys() if wanted.get(name) != stored.get(name)
            )
            if changed:
                shown = ", ".join(f"{name}: {stored.get(name)} -> {wanted.get(name)}" for name in changed[:3])
                raise ResultsStoreError(
                    f"{self.path.parent} holds a sweep with other settings ({shown}): use a new --out folder "
                    "or repeat the original settings to resume it"
                )
            return
        with self._connection:
            self._connection.executemany("INSERT INTO sweep_settings VALUES (?, ?)", wanted.items())

    def append(self, record: EpisodeRecord) -> bool:
        """Insert one finished episode; False when (checkpoint, arm, seed) was already stored."""
        values = record.to_dict()
        placeholders = ", ".join("?" for _ in RECORD_FIELDS)
        try:
            with self._connection:  # one transaction: a failed write leaves the stored episodes as they were
                cursor = self._connection.execute(
                    f"INSERT OR IGNORE INTO episodes ({', '.join(RECORD_FIELDS)}) VALUES ({placeholders})",
                    [values[name] for name in RECORD_FIELDS],
                )
        except sqlite3.OperationalError as error:
            raise ResultsStoreError(
                f"cannot store an episode in {self.path} ({error}): free space on the disk holding it, then "
                f"run the same command to resume (the {self.count()} episodes stored are kept)"
            ) from None
        return cursor.rowcount == 1

    def extend(self, records: Iterable[EpisodeRecord]) -> int:
        return sum(self.append(record) for record in records)

    def done_keys(self) -> set[tuple[str, str, int]]:
        """The stored episodes' keys, as ``EpisodeTask.key`` and ``EpisodeRecord.key`` spell them."""
        return {
            (row[0], row[1], int(row[2]))
            for row in self._connection.execute("SELECT checkpoint_id, arm, seed FROM episodes")
        }

    def records(self) -> list[EpisodeRecord]:
        cursor = self._connection.execute(
            f"SELECT {', '.join(RECORD_FIELDS)} FROM episodes ORDER BY checkpoint_id, arm, seed"
        )
        out = []
        for row in cursor.fetchall():
            data = dict(zip(RECORD_FIELDS, row, strict=True))
            data["picked"] = bool(data["picked"])
            out.append(EpisodeRecord.from_dict(data))
        return out

    def count(self) -> int:
        return int(self._connection.execute("SELECT COUNT(*) FROM episodes").fetchone()[0])
