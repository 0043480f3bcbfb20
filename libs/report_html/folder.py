"""A sweep folder read as files: ``report.json``, the per-episode store (``episodes.sqlite``), ``plan.json``,
``command.txt`` and the whisker episodes under ``whiskers/``.

Read-only and lock-free: the store is copied into memory byte for byte (a SQLite connection to the live file
would take a shared lock, which holds up the sweep's next write) and queried there. A copy taken while the
sweep commits is detected (a journal file present, or the file changed during the read) and taken again; a
store that stays unreadable, a half-written ``report.json`` or a missing file becomes a ``FolderError``
whose message is shown on the folder's page, never an exception that reaches a server.

The names here are the folder format that ``libs.evaluation`` writes (``store.STORE_FILE_NAME``,
``report.REPORT_JSON``, ``sweep_whiskers.WHISKERS_DIR``); this package does not import the code that
writes them.
"""

from __future__ import annotations

import json
import shlex
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from libs.report_html.legacy_arms import split_legacy_ids
from libs.report_html.plan import PLAN_JSON, SweepPlan, read_sweep_plan

STORE_FILE = "episodes.sqlite"
REPORT_JSON = "report.json"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"
COMMAND_FILE = "command.txt"
VERSIONS_FILE = "versions.json"
WHISKERS_DIR = "whiskers"
#: Copies of a store taken while it was being written are retried this many times.
SNAPSHOT_TRIES = 8


class FolderError(RuntimeError):
    """A file of the folder cannot be read; the message names the file, the problem and what to do."""


def file_safe_id(checkpoint_id: str) -> str:
    """A checkpoint id as a folder name: the rule of ``libs.evaluation.plan.checkpoints.file_safe_id``."""
    return "".join(char if char.isalnum() or char in "-_." else "_" for char in checkpoint_id) or "policy"


def is_sweep_folder(path: Path) -> bool:
    return (
        (path / STORE_FILE).is_file() or (path / PLAN_JSON).is_file() or _is_sweep_report(path / REPORT_JSON)
    )


def _is_sweep_report(path: Path) -> bool:
    if not path.is_file():
        return False
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return True  # a half-written report.json is still a sweep's (its page names the problem)
    return isinstance(data, dict) and "checkpoints" in data


def store_snapshot(path: Path) -> bytes:
    """The store's bytes, copied while no write was under way (b"" when the sweep has only created it)."""
    journal = path.with_name(path.name + "-journal")
    data = b""
    for attempt in range(SNAPSHOT_TRIES):
        try:
            before = path.stat()
            if journal.exists():
                raise _Busy
            data = path.read_bytes()
            after = path.stat()
            if journal.exists() or (before.st_mtime_ns, before.st_size) != (after.st_mtime_ns, after.st_size):
                raise _Busy
            return data
        except _Busy:
            time.sleep(0.02 * (attempt + 1))
        except FileNotFoundError:
            raise FolderError(
                f"{path.name} does not exist yet: the sweep has not stored an episode"
            ) from None
        except OSError as error:
            raise FolderError(f"{path.name} cannot be read ({error})") from None
    return data  # still being written after every try: the last copy, checked by whoever opens it


class _Busy(Exception):
    pass


def read_store(path: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(episode rows as dicts, the sweep's settings) from a copy of the store; FolderError if unreadable."""
    data = store_snapshot(path)
    if not data:
        return [], {}
    connection = sqlite3.connect(":memory:")
    try:
        connection.deserialize(data)
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        rows: list[dict[str, Any]] = []
        if "episodes" in tables:
            cursor = connection.execute("SELECT * FROM episodes")
            names = [column[0] for column in cursor.description]
            rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        settings: dict[str, Any] = {}
        if "sweep_settings" in tables:
            for name, value in connection.execute("SELECT name, value FROM sweep_settings"):
                try:
                    settings[str(name)] = json.loads(value)
                except (TypeError, ValueError):
                    settings[str(name)] = value
    except (sqlite3.DatabaseError, ValueError, KeyError) as error:
        raise FolderError(
            f"{path.name} is not a readable results store ({error}): if its sweep is still running this "
            "page shows it once the next episode is stored; otherwise run the sweep's command again (it "
            "resumes), or use a new --out folder"
        ) from None
    finally:
        connection.close()
    for row in rows:
        if not isinstance(row.get("checkpoint_id"), str) or not isinstance(row.get("seed"), int):
            raise FolderError(f"{path.name} holds a row without a checkpoint id and seed: {row!r:.200}")
    if rows and not all(isinstance(row.get("arm"), str) for row in rows):
        _split_legacy_arm_ids(rows, settings)
    rows.sort(key=lambda row: (row["checkpoint_id"], row["arm"], row["seed"]))
    return rows, settings


def _split_legacy_arm_ids(rows: list[dict[str, Any]], settings: dict[str, Any]) -> None:
    """A store no sweep has opened since arms got their column (the sweep migrates it when it opens it;
    this copy is read-only): each ``<id>+<arm>`` row read as its checkpoint and arm."""
    declared = settings.get("perturbations")
    split = split_legacy_ids(
        (row["checkpoint_id"] for row in rows), declared if isinstance(declared, list) else []
    )
    for row in rows:
        row["checkpoint_id"], row["arm"] = split[row["checkpoint_id"]]


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FolderError(f"{path.name} does not exist") from None
    except (OSError, ValueError) as error:
        raise FolderError(
            f"{path.name} cannot be read ({error}): it may be half-written (its sweep is finishing), or "
            "run the sweep's command again to rewrite it"
        ) from None


@dataclass
class Episode:
    """One stored episode with what the pages add: its checkpoint, its perturbation arm ("" for the
    control) and whisker files."""

    row: dict[str, Any]
    checkpoint: str
    arm: str
    #: name ("video", "summary", ...) -> path relative to the sweep folder
    files: dict[str, str] = field(default_factory=dict)
    likely_causes: list[str] = field(default_factory=list)

    @property
    def seed(self) -> int:
        return int(self.row["seed"])

    @property
    def success(self) -> bool:
        return self.row.get("outcome") == "success"

    @property
    def sentence(self) -> str:
        """The failure in words: the classifier's sentence, else the contract violation."""
        return str(self.row.get("failure_detail") or self.row.get("violation") or "")


@dataclass
class SweepFolder:
    """What a sweep folder holds, each part read on its own so one bad file spoils only its part."""

    path: Path
    report: dict[str, Any] | None = None
    report_error: str | None = None
    episodes: list[Episode] = field(default_factory=list)
    store_error: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    plan: SweepPlan | None = None
    commands: list[str] = field(default_factory=list)
    #: When the last episode was stored (the store's modification time), and whether report.json is older.
    store_time: float | None = None
    finished: bool = False

    @property
    def policy(self) -> str:
        return str(
            (self.report or {}).get("settings", {}).get("policy") or self.settings.get("policy") or "?"
        )

    @property
    def checkpoint_ids(self) -> list[str]:
        """The controls in step order: report.json's order, else the plan's, else the store's."""
        if self.report and isinstance(self.report.get("checkpoints"), list):
            ids = [str(c.get("checkpoint_id")) for c in self.report["checkpoints"]]
            if ids:
                return ids
        if self.plan is not None:
            return [c.checkpoint_id for c in self.plan.checkpoints]
        return list(dict.fromkeys(e.checkpoint for e in self.episodes))

    @property
    def planned_episodes(self) -> int | None:
        return self.plan.planned_episodes if self.plan is not None else None

    @property
    def date(self) -> str:
        times = [t for t in (self.store_time, _mtime(self.path / REPORT_JSON)) if t is not None]
        if not times:
            return ""
        return datetime.fromtimestamp(max(times), UTC).strftime("%Y-%m-%d %H:%M UTC")

    def episodes_of(self, checkpoint: str, arm: str = "") -> list[Episode]:
        return [e for e in self.episodes if e.checkpoint == checkpoint and e.arm == arm]


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def load_sweep(path: str | Path) -> SweepFolder:
    """Everything the pages show of one sweep folder; unreadable parts become error messages."""
    folder = SweepFolder(Path(path))
    report_path = folder.path / REPORT_JSON
    if report_path.exists():
        try:
            report = read_json(report_path)
            if not isinstance(report, dict) or not isinstance(report.get("checkpoints", []), list):
                raise FolderError(f"{REPORT_JSON} is not a sweep report (no list of checkpoints)")
            folder.report = report
        except FolderError as error:
            folder.report_error = str(error)
    try:
        folder.plan = read_sweep_plan(folder.path)
    except ValueError as error:
        folder.report_error = folder.report_error or str(error)
    store = folder.path / STORE_FILE
    folder.store_time = _mtime(store)
    rows: list[dict[str, Any]] = []
    if store.exists():
        try:
            rows, folder.settings = read_store(store)
        except FolderError as error:
            folder.store_error = str(error)
    folder.commands = _commands(folder.path / COMMAND_FILE)
    folder.episodes = _episodes(folder, rows)
    folder.finished = _finished(folder)
    return folder


def _finished(folder: SweepFolder) -> bool:
    """Whether report.json reports what the store holds: it counts every stored episode, and no sweep has
    started since it was written with episodes still to run (a resumed sweep before its first new one)."""
    if folder.report is None or folder.store_error:
        return folder.report is not None and not (folder.path / STORE_FILE).exists()
    reported = sum(int(c.get("episodes") or 0) for c in folder.report.get("checkpoints") or [])
    if reported != sum(not e.arm for e in folder.episodes):
        return False
    plan_time, report_time = _mtime(folder.path / PLAN_JSON), _mtime(folder.path / REPORT_JSON)
    planned = folder.planned_episodes
    started_since = plan_time is not None and report_time is not None and plan_time > report_time + 1
    return not (started_since and planned is not None and len(folder.episodes) < planned)


def _commands(path: Path) -> list[str]:
    """The commands that wrote the folder (one per start or resume), without their time-stamp lines."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _episodes(folder: SweepFolder, rows: list[dict[str, Any]]) -> list[Episode]:
    wanted = folder.plan.keys() if folder.plan is not None else None
    whiskers = _whisker_entries(folder)
    episodes = []
    for row in rows:
        checkpoint, arm, seed = str(row["checkpoint_id"]), str(row["arm"]), int(row["seed"])
        if wanted is not None and (checkpoint, arm, seed) not in wanted:
            continue  # stored by an earlier, larger run of the same sweep: not part of this report
        files, causes = whiskers.get((checkpoint, arm, seed), ({}, []))
        episodes.append(Episode(row, checkpoint, arm, files, causes))
    return episodes


def _whisker_entries(folder: SweepFolder) -> dict[tuple[str, str, int], tuple[dict[str, str], list[str]]]:
    """(checkpoint id, arm, seed) -> (whisker files relative to the folder, likely causes): report.json's
    list, then any ``whiskers/<checkpoint>[/<arm>]/seed_<seed>/`` folder it does not name (a sweep still
    recording)."""
    found: dict[tuple[str, str, int], tuple[dict[str, str], list[str]]] = {}
    section = (folder.report or {}).get("whisker_diagnostics") or {}
    groups = section.get("checkpoints") or {}
    # A report from before arms were a field keyed an arm's group "<id>+<arm>" and named neither.
    legacy = split_legacy_ids(groups, folder.plan.arms if folder.plan is not None else [])
    for name, data in groups.items():
        data = data if isinstance(data, dict) else {}
        checkpoint, arm = (
            (str(data["checkpoint_id"]), str(data.get("arm") or ""))
            if "checkpoint_id" in data
            else legacy[name]
        )
        for entry in data.get("episodes") or []:
            try:
                files = {str(k): str(v) for k, v in (entry.get("files") or {}).items()}
                found[(checkpoint, arm, int(entry["seed"]))] = (files, list(entry.get("likely_causes") or []))
            except (TypeError, ValueError, KeyError, AttributeError):
                continue
    root = folder.path / WHISKERS_DIR
    if root.is_dir():
        ids = {file_safe_id(i): i for i in [*folder.checkpoint_ids, *_plan_ids(folder)]}
        arms = {file_safe_id(arm): arm for arm in (folder.plan.arms if folder.plan is not None else [])}
        for seed_dir in sorted([*root.glob("*/seed_*"), *root.glob("*/*/seed_*")]):
            parent = seed_dir.parent
            nested = parent.parent != root  # an arm's: <checkpoint>/<arm>/seed_<seed>
            checkpoint = ids.get(parent.parent.name if nested else parent.name)
            arm = arms.get(parent.name) if nested else ""
            seed_text = seed_dir.name.removeprefix("seed_")
            if checkpoint is None or arm is None or not seed_text.isdigit():
                continue
            key = (checkpoint, arm, int(seed_text))
            if key not in found and (files := _whisker_files(seed_dir, folder.path)):
                found[key] = (files, [])
    return found


def _whisker_files(seed_dir: Path, folder: Path) -> dict[str, str]:
    files: dict[str, str] = {}
    for video in sorted(seed_dir.glob("whiskers_*.mp4")):
        files.setdefault("video", str(video.relative_to(folder)))
    for picture in sorted(seed_dir.glob("summary_*.png")):
        files.setdefault("summary", str(picture.relative_to(folder)))
    return files


def _plan_ids(folder: SweepFolder) -> list[str]:
    return [c.checkpoint_id for c in folder.plan.checkpoints] if folder.plan is not None else []


def command_option(command: str, option: str) -> str | None:
    """The value of ``--option VALUE`` (or ``--option=VALUE``) in a recorded command line."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    for index, word in enumerate(words):
        if word == option and index + 1 < len(words):
            return words[index + 1]
        if word.startswith(option + "="):
            return word.split("=", 1)[1]
    return None
