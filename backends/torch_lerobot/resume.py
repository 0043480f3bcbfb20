"""What ``train --resume`` continues from, and the run's loss log.

LeRobot's own resume does the restoring (``lerobot_train.train`` with ``resume=True`` reads the checkpoint's
``training_state/``: optimizer, scheduler, RNG state and step, and its sampler continues the data order from
that step). This module picks the checkpoint: the newest *complete* one. A checkpoint is written into
``checkpoints/.partial/NNNNNN`` and renamed into place once whole (``atomic_checkpoint_dir``), so a kill
mid-save leaves no half checkpoint under its step's name; one damaged later (a truncated or missing file)
is moved to ``checkpoints/.incomplete/`` and the one before it is resumed.

``RUN/loss_log.jsonl`` has one line per training step (step, loss, learning rate, gradient norm). A resumed
run first drops the lines after its checkpoint's step (steps it trains again), then appends, so the log is
one continuous curve however often the run was killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from backends.torch_lerobot.checkpoints import (
    CHECKPOINTS_DIR_NAME,
    LAST_CHECKPOINT_LINK,
    POSTPROCESSOR_FILE,
    PREPROCESSOR_FILE,
    PRETRAINED_DIR_NAME,
    TRAIN_CONFIG_FILE,
    list_checkpoints,
)

LOSS_LOG_FILE = "loss_log.jsonl"
#: ``checkpoints/.partial/NNNNNN``: a checkpoint being written (renamed to ``checkpoints/NNNNNN`` when whole)
PARTIAL_DIR_NAME = ".partial"
#: ``checkpoints/.incomplete/NNNNNN-K``: damaged checkpoints a resume stepped back from (kept, not deleted)
INCOMPLETE_DIR_NAME = ".incomplete"
TRAINING_STATE_DIR_NAME = "training_state"
#: what LeRobot's ``save_checkpoint`` writes, relative to the checkpoint dir (processor state files vary)
REQUIRED_FILES: tuple[str, ...] = (
    f"{PRETRAINED_DIR_NAME}/config.json",
    f"{PRETRAINED_DIR_NAME}/model.safetensors",
    f"{PRETRAINED_DIR_NAME}/{TRAIN_CONFIG_FILE}",
    f"{PRETRAINED_DIR_NAME}/{PREPROCESSOR_FILE}",
    f"{PRETRAINED_DIR_NAME}/{POSTPROCESSOR_FILE}",
    f"{TRAINING_STATE_DIR_NAME}/training_step.json",
    f"{TRAINING_STATE_DIR_NAME}/rng_state.safetensors",
    f"{TRAINING_STATE_DIR_NAME}/optimizer_state.safetensors",
    f"{TRAINING_STATE_DIR_NAME}/optimizer_param_groups.json",
)
#: what a run killed before its first checkpoint may hold: cleared when ``--resume`` starts it again
FRESH_RUN_LEFTOVERS = frozenset({LOSS_LOG_FILE, "preflight.txt", CHECKPOINTS_DIR_NAME, "wandb"})


@dataclass(frozen=True)
class ResumePoint:
    """The newest complete checkpoint (None: there is none) and the damaged ones after it, with why."""

    checkpoint: Path | None
    damaged: tuple[tuple[Path, str], ...] = ()

    @property
    def step(self) -> int:
        return int(self.checkpoint.name) if self.checkpoint is not None else 0


def checkpoint_problem(checkpoint_dir: Path) -> str | None:
    """Why ``checkpoint_dir`` cannot be resumed from (a missing, truncated or corrupt file), or None."""
    for name in REQUIRED_FILES:
        if not (checkpoint_dir / name).is_file():
            return f"it lacks {name}"
    for path in sorted(checkpoint_dir.rglob("*")):
        relative = path.relative_to(checkpoint_dir)
        if path.suffix == ".json" and not _json_whole(path):
            return f"{relative} is truncated or corrupt"
        if path.suffix == ".safetensors" and not _safetensors_whole(path):
            return f"{relative} is truncated or corrupt"
    return None


def _json_whole(path: Path) -> bool:
    try:
        json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return True


def _safetensors_whole(path: Path) -> bool:
    """A safetensors file is whole when its header parses and its tensors end exactly at the file's end."""
    size = path.stat().st_size
    with path.open("rb") as stream:
        length_bytes = stream.read(8)
        if len(length_bytes) < 8:
            return False
        header_length = int.from_bytes(length_bytes, "little")
        if 8 + header_length > size:
            return False
        try:
            header = json.loads(stream.read(header_length))
        except (json.JSONDecodeError, UnicodeDecodeError):
            return False
    ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
    return size == 8 + header_length + max(ends, default=0)


def find_resume_point(run_dir: Path) -> ResumePoint:
    """The newest complete checkpoint of ``run_dir`` and the damaged ones written after it."""
    if not (run_dir / CHECKPOINTS_DIR_NAME).is_dir():
        return ResumePoint(None)
    damaged: list[tuple[Path, str]] = []
    for checkpoint in reversed(list_checkpoints(run_dir)):
        problem = checkpoint_problem(checkpoint)
        if problem is None:
            return ResumePoint(checkpoint, tuple(damaged))
        damaged.append((checkpoint, problem))
    return ResumePoint(None, tuple(damaged))


def set_aside_damaged(point: ResumePoint) -> list[Path]:
    """Move the damaged checkpoints after the resume point to ``checkpoints/.incomplete/`` (the resumed run
    writes those steps again), and point ``checkpoints/last`` at the resume point."""
    kept = []
    for checkpoint, _ in point.damaged:
        aside = checkpoint.parent / INCOMPLETE_DIR_NAME
        aside.mkdir(exist_ok=True)
        target = next(
            aside / f"{checkpoint.name}-{n}"
            for n in range(1, 10_000)
            if not (aside / f"{checkpoint.name}-{n}").exists()
        )
        checkpoint.rename(target)
        kept.append(target)
    if point.checkpoint is not None:
        last = point.checkpoint.parent / LAST_CHECKPOINT_LINK
        if last.is_symlink() or last.exists():
            last.unlink()
        last.symlink_to(point.checkpoint.name)
    return kept


def clear_fresh_run(run_dir: Path) -> list[str]:
    """Empty a run killed before its first complete checkpoint so that it can start again from step 0;
    returns the names it holds that are not a run's (then nothing is removed)."""
    strangers = sorted(child.name for child in run_dir.iterdir() if child.name not in FRESH_RUN_LEFTOVERS)
    if strangers:
        return strangers
    for child in run_dir.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    run_dir.rmdir()
    return []


@contextlib.contextmanager
def atomic_checkpoint_dir(checkpoint_dir: Path) -> Iterator[Path]:
    """A scratch dir to write ``checkpoint_dir`` into, renamed to it once the body finished; on an error the
    scratch copy is removed (a full disk gets its space back) and the earlier checkpoints are untouched."""
    scratch = checkpoint_dir.parent / PARTIAL_DIR_NAME / checkpoint_dir.name
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield scratch
        if checkpoint_dir.exists():  # a damaged copy of this step that a resume did not set aside
            shutil.rmtree(checkpoint_dir)
        scratch.rename(checkpoint_dir)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


class LossLog:
    """``RUN/loss_log.jsonl``, appended one line per step and flushed, so a kill loses at most a line."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOSS_LOG_FILE
        self._file: IO[str] | None = None

    def write(self, step: int, metrics: dict[str, float]) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", buffering=1)
        self._file.write(json.dumps({"step": step, **metrics}) + "\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_loss_log(run_dir: Path) -> list[dict[str, Any]]:
    """The loss log's whole lines (a line cut short by a kill is skipped)."""
    path = run_dir / LOSS_LOG_FILE
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("step"), int):
            entries.append(entry)
    return entries


def truncate_loss_log(run_dir: Path, step: int) -> int:
    """Keep the log's lines up to ``step`` (the resumed checkpoint's), once each; returns how many."""
    path = run_dir / LOSS_LOG_FILE
    kept: dict[int, dict[str, Any]] = {}
    for entry in read_loss_log(run_dir):
        if entry["step"] <= step:
            kept[entry["step"]] = entry
    if path.exists():
        scratch = path.with_name(path.name + ".tmp")
        scratch.write_text("".join(json.dumps(kept[key]) + "\n" for key in sorted(kept)))
        os.replace(scratch, path)
    return len(kept)
