"""Dataset doctor: find the data mistakes that silently ruin training runs, and repair the statistics.

Checks (each finding has a severity, where it is, what is wrong and how to fix it):
- stats: ``meta/stats.json`` missing, a feature or a statistic missing, non-finite values, wrong shapes, image
  stats on the 0–255 scale, image std so small that normalised pixels explode (the std ≈ 0.002 → ±300 bug),
  near-zero std of a state/action dimension, stats that do not match the data (per-episode stats recomputed
  from a sample of episodes, dataset stats vs the merge of the per-episode stats);
- frames: NaN/inf in state or actions, gripper range (our convention is 0–100; 0–1 data is flagged),
  episodes of zero length, frozen actions, duplicate episodes, totals that disagree with ``info.json``;
- videos: files missing or unreadable, episodes whose decoded frame count differs from their length;
- scene: ``meta/scene.json`` (the camera config) missing or unreadable;
- depth: depth stored as float arrays (LeRobot takes them for a state: ``convert depth``), a depth map
  without its ``depth_unit`` (LeRobot cannot convert it to metres), depth stats not of shape (1, 1, 1).

``--fix`` recomputes every statistic from the stored frames and writes ``meta/stats.json`` and the episodes'
stats atomically, after copying the old files to ``meta/backup-<UTC time>/``. Only statistics are repaired:
bad frames need ``convert filter`` (drop episodes) or a re-recording. Exit status: 1 when errors remain.

    ./pants run libs/datasets:doctor -- DATASET [--fix] [--sample-episodes 8] [--json report.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from libs.datasets import stats as stats_lib
from libs.datasets.lerobot_v3 import (
    EPISODES_DIR,
    SCENE_PATH,
    STATS_PATH,
    VISUAL_DTYPES,
    DatasetError,
    LeRobotV3Dataset,
    compute_episode_stats,
    episode_stats_columns,
    is_depth_feature,
    is_legacy_depth_feature,
    recompute_stats,
    write_episodes_table,
    write_json_atomic,
)
from libs.datasets.video import VideoError

Severity = Literal["error", "warning", "info"]

#: An image std (on the [0, 1] scale) below this turns a normalised pixel into more than ±50: LeRobot's
#: mean/std normalisation of a pixel 0.5 away from the mean gives 0.5 / 0.01 = 50. Real camera images have
#: per-channel std 0.05–0.3; the bug that motivated this check stored std ≈ 0.002 (→ ±300).
MIN_IMAGE_STD = 0.01
#: A state/action dimension whose std is below this (in its own units: degrees, 0–100, metres) normalises
#: any later deviation to huge values; only a warning since a truly constant dimension can be legitimate.
MIN_VECTOR_STD = 1e-4
#: Recomputed per-episode stats may differ from stored ones by this much: vectors are exact up to float32
#: rounding; images are decoded from lossy video here but may have been computed from lossless frames
#: when recorded, which moves channel means by a few 1/255.
VECTOR_RELATIVE_TOLERANCE = 1e-3
IMAGE_ABSOLUTE_TOLERANCE = 0.03
#: An episode whose action never changes, or keeps one value for this fraction of its steps, is frozen
#: (a stalled teleop or a policy that output a constant): a warning, since a short hold can be real.
FROZEN_FRACTION = 0.9
#: The gripper column's convention is 0–100 (LeRobot's SO-101 degrees mode); values up to 1 mean a dataset
#: in openpi's 0–1 convention, values beyond this margin outside 0–100 mean a units mistake.
GRIPPER_MARGIN = 5.0


@dataclass(frozen=True)
class Finding:
    severity: Severity
    check: str
    where: str
    problem: str
    fix: str


@dataclass
class DoctorReport:
    root: Path
    findings: list[Finding]

    @property
    def errors(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def checks_failed(self) -> set[str]:
        return {finding.check for finding in self.findings if finding.severity != "info"}

    def to_dict(self) -> dict[str, Any]:
        return {"root": str(self.root), "ok": self.ok, "findings": [asdict(f) for f in self.findings]}


class _Collector:
    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def add(self, severity: Severity, check: str, where: str, problem: str, fix: str) -> None:
        self.findings.append(Finding(severity, check, where, problem, fix))


FIX_STATS = "run `doctor DATASET --fix` to recompute the stats from the data"


# --------------------------------------------------------------------------------------------------- checks
def diagnose(root: str | Path, sample_episodes: int = 8, seed: int = 0) -> DoctorReport:
    """Run every check on the dataset at ``root``."""
    found = _Collector()
    try:
        dataset = LeRobotV3Dataset(root)
        _ = dataset.episodes_table
    except DatasetError as error:
        found.add("error", "layout", str(root), str(error), "point at a LeRobot v3.0 dataset root")
        return DoctorReport(Path(root), found.findings)
    _check_scene(dataset, found)
    _check_depth_layout(dataset, found)
    _check_stats_present(dataset, found)
    frames = _check_frames(dataset, found)
    _check_videos(dataset, found)
    _check_stats_match(dataset, found, sample_episodes, seed, frames)
    if not found.findings:
        found.add("info", "all", str(root), "no problem found", "-")
    return DoctorReport(dataset.root, found.findings)


def _numeric_keys(dataset: LeRobotV3Dataset) -> list[str]:
    return [
        key for key, feature in dataset.features.items() if feature["dtype"] not in (*VISUAL_DTYPES, "string")
    ]


def _check_scene(dataset: LeRobotV3Dataset, found: _Collector) -> None:
    path = dataset.root / SCENE_PATH
    if not path.is_file():
        found.add(
            "warning",
            "camera config",
            SCENE_PATH,
            "the camera/scene config is missing: evaluations cannot check the cameras against training",
            "re-record (`record` or `convert rerecord`), or copy the recording's scene.json there",
        )
        return
    try:
        json.loads(path.read_text())
    except json.JSONDecodeError as error:
        found.add("error", "camera config", SCENE_PATH, f"not valid JSON ({error})", "restore or rewrite it")


def _check_depth_layout(dataset: LeRobotV3Dataset, found: _Collector) -> None:
    for key, feature in dataset.features.items():
        if is_legacy_depth_feature(feature):
            found.add(
                "error",
                "depth layout",
                key,
                "depth stored as a float array: LeRobot lists no depth key and types it as a state, so no "
                "policy sees it as an image",
                "rewrite it as a LeRobot depth map: ./pants run libs/datasets:convert -- depth "
                f"{dataset.root} NEW_DIR",
            )
        elif is_depth_feature(feature):
            unit = (feature.get("info") or {}).get("depth_unit")
            if unit not in ("m", "mm"):
                found.add(
                    "error",
                    "depth layout",
                    key,
                    f"depth_unit is {unit!r}: LeRobot returns this depth unconverted, metres are not "
                    "recoverable",
                    'set info.depth_unit in meta/info.json to the stored unit ("mm" for 16-bit maps)',
                )
            if list(feature["shape"])[-1:] != [1]:
                found.add(
                    "error",
                    "depth layout",
                    key,
                    f"depth map shape {feature['shape']}: LeRobot needs (H, W, 1)",
                    "re-record the dataset",
                )


def _check_stats_present(dataset: LeRobotV3Dataset, found: _Collector) -> None:
    stats = _read_stats(dataset, found)
    if stats is None:
        return
    for key, feature in dataset.features.items():
        if feature["dtype"] == "string":
            continue
        if key not in stats:
            found.add("error", "stats missing", key, "no statistics for this feature", FIX_STATS)
            continue
        if _stats_complete_and_finite(key, stats[key], found):
            _check_stats_values(dataset, key, feature, stats[key], found)


def _read_stats(dataset: LeRobotV3Dataset, found: _Collector) -> dict[str, Any] | None:
    """``meta/stats.json`` as read (``{}`` when empty), or ``None`` after reporting it missing/unreadable."""
    path = dataset.root / STATS_PATH
    if not path.is_file():
        found.add("error", "stats missing", STATS_PATH, "meta/stats.json does not exist", FIX_STATS)
        return None
    try:
        return dataset.stats or {}
    except (json.JSONDecodeError, ValueError) as error:
        found.add("error", "stats missing", STATS_PATH, f"unreadable ({error})", FIX_STATS)
        return None


def _stats_complete_and_finite(key: str, feature_stats: dict[str, Any], found: _Collector) -> bool:
    """Whether the feature has every statistic, all finite; reports the first of those it lacks."""
    missing = [name for name in ("min", "max", "mean", "std", "count") if name not in feature_stats]
    if missing:
        found.add("error", "stats missing", key, f"statistics {missing} are missing", FIX_STATS)
        return False
    bad = [name for name, value in feature_stats.items() if not np.all(np.isfinite(np.asarray(value, float)))]
    if bad:
        found.add("error", "stats non-finite", key, f"{', '.join(bad)} contain NaN or inf", FIX_STATS)
        return False
    return True


def _check_stats_values(
    dataset: LeRobotV3Dataset,
    key: str,
    feature: dict[str, Any],
    feature_stats: dict[str, Any],
    found: _Collector,
) -> None:
    """Shapes and scales LeRobot's normalisation needs, by kind of feature (depth, image, state/action)."""
    std = np.asarray(feature_stats["std"], dtype=float)
    if is_depth_feature(feature):
        shape = np.asarray(feature_stats["mean"]).shape
        if shape != (1, 1, 1):
            found.add(
                "error", "stats shape", key, f"depth stats have shape {shape}, LeRobot needs (1, 1, 1)",
                FIX_STATS,
            )  # fmt: skip
    elif feature["dtype"] in VISUAL_DTYPES:
        _check_image_stats(key, feature_stats, std, found)
    elif key in ("observation.state", "action") and std.min() < MIN_VECTOR_STD:
        names = dataset.features[key].get("names") or []
        dims = [names[i] if i < len(names) else str(i) for i in np.flatnonzero(std < MIN_VECTOR_STD)]
        found.add(
            "warning",
            "vector std tiny",
            key,
            f"std < {MIN_VECTOR_STD} for {dims}: any change there normalises to huge values",
            "check that the dimensions really are constant; drop them or use min/max normalisation",
        )


def _check_image_stats(key: str, feature_stats: dict[str, Any], std: np.ndarray, found: _Collector) -> None:
    """Colour-camera stats: shape (3, 1, 1), on the [0, 1] scale, std large enough to normalise by."""
    shape = np.asarray(feature_stats["mean"]).shape
    if shape != (3, 1, 1):
        found.add(
            "error",
            "stats shape",
            key,
            f"image stats have shape {shape}, LeRobot needs (3, 1, 1)",
            FIX_STATS,
        )
    if np.asarray(feature_stats["max"], float).max() > 1.0 + 1e-6:
        found.add(
            "error",
            "image stats scale",
            key,
            f"max {np.asarray(feature_stats['max']).max():.3g} > 1: stats are on the 0–255 scale, "
            "LeRobot expects [0, 1]",
            FIX_STATS,
        )
    if std.min() < MIN_IMAGE_STD:
        worst = 0.5 / max(float(std.min()), 1e-12)
        found.add(
            "error",
            "image std tiny",
            key,
            f"std {std.ravel().round(5).tolist()} < {MIN_IMAGE_STD}: normalised pixels reach ±{worst:.0f}",
            FIX_STATS + " (if the std stays tiny, the camera shows a constant image: check the scene)",
        )


def _check_frames(dataset: LeRobotV3Dataset, found: _Collector) -> dict[int, dict[str, np.ndarray]]:
    """Per-episode checks on the parquet frames; returns the frames read (for the stats check)."""
    table = dataset.episodes_table
    lengths = dict(zip(dataset.episode_indices, table.column("length").to_pylist(), strict=True))
    frames: dict[int, dict[str, np.ndarray]] = {}
    digests: dict[str, int] = {}
    total = 0
    keys = [key for key in ("observation.state", "action") if key in dataset.features]
    for episode_index, length in lengths.items():
        where = f"episode {episode_index}"
        columns = _read_episode_frames(dataset, episode_index, length, found)
        if columns is None:
            continue
        frames[episode_index] = columns
        total += len(columns.get("index", []))
        if len(columns.get("index", [])) != length:
            found.add(
                "error",
                "episode length",
                where,
                f"meta/episodes says {length} frames, the data has {len(columns.get('index', []))}",
                "re-record the dataset; the episode index no longer matches the data",
            )
        _check_finite_frames(where, columns, keys, found)
        if "action" in columns and len(columns["action"]) > 1:
            _check_frozen_actions(where, length, columns["action"], found)
            _check_duplicate_actions(where, episode_index, columns["action"], digests, found)
    if frames and total != dataset.num_frames and all(lengths.values()):
        found.add(
            "error",
            "totals",
            "meta/info.json",
            f"total_frames is {dataset.num_frames} but the episodes hold {total}",
            "re-record or rebuild info.json with `convert merge` of this dataset alone",
        )
    _check_gripper(dataset, frames, found)
    return frames


def _read_episode_frames(
    dataset: LeRobotV3Dataset, episode_index: int, length: int, found: _Collector
) -> dict[str, np.ndarray] | None:
    """The episode's numeric columns, or ``None`` after reporting it empty or unreadable."""
    where = f"episode {episode_index}"
    if not length:
        found.add(
            "error",
            "zero-length episode",
            where,
            "the episode has no frames",
            "drop it with `convert filter --exclude-episodes N` into a new dataset",
        )
        return None
    try:
        return dataset.episode(episode_index, _numeric_keys(dataset))
    except (DatasetError, pa.ArrowException, OSError) as error:
        found.add("error", "data unreadable", where, str(error), "restore the data files or re-record")
        return None


def _check_finite_frames(
    where: str, columns: dict[str, np.ndarray], keys: Sequence[str], found: _Collector
) -> None:
    for key in keys:
        values = columns[key].astype(np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            steps = np.flatnonzero(bad.any(axis=1))
            found.add(
                "error",
                "non-finite frames",
                f"{where} {key}",
                f"{int(bad.sum())} NaN/inf values at frames {steps[:5].tolist()}",
                "drop the episode with `convert filter --exclude-episodes` or re-record it",
            )


def _check_frozen_actions(where: str, length: int, action: np.ndarray, found: _Collector) -> None:
    changes = np.any(np.abs(np.diff(action, axis=0)) > 1e-6, axis=1)
    if not changes.any() or 1.0 - changes.mean() >= FROZEN_FRACTION:
        found.add(
            "warning",
            "frozen actions",
            where,
            f"the action is unchanged for {100 * (1 - changes.mean()):.0f}% of {length} steps",
            "inspect the episode; drop it with `convert filter --exclude-episodes` if it is a stall",
        )


def _check_duplicate_actions(
    where: str, episode_index: int, action: np.ndarray, digests: dict[str, int], found: _Collector
) -> None:
    """Reports an episode whose actions equal an earlier one's; ``digests`` remembers the episodes seen."""
    digest = hashlib.sha1(np.ascontiguousarray(action).tobytes()).hexdigest()
    if digest in digests:
        found.add(
            "warning",
            "duplicate episode",
            where,
            f"its actions are identical to episode {digests[digest]}",
            "drop the copy with `convert filter --exclude-episodes`",
        )
    else:
        digests[digest] = episode_index


def _gripper_columns(dataset: LeRobotV3Dataset, key: str) -> list[int]:
    names = dataset.features.get(key, {}).get("names") or []
    return [i for i, name in enumerate(names) if "gripper" in str(name)]


def _check_gripper(
    dataset: LeRobotV3Dataset, frames: dict[int, dict[str, np.ndarray]], found: _Collector
) -> None:
    for key in ("observation.state", "action"):
        columns = _gripper_columns(dataset, key)
        if not columns and key in dataset.features:
            # Unchecked is not the same as fine: say so instead of passing silently.
            found.add(
                "warning",
                "gripper range",
                key,
                "no dimension is named 'gripper', so its 0–100 vs 0–1 range cannot be checked",
                "name the gripper dimension in meta/info.json (features.<key>.names)",
            )
            continue
        if not columns or not frames:
            continue
        values = np.concatenate([episode[key][:, columns] for episode in frames.values() if key in episode])
        values = values[np.isfinite(values)]
        if values.size == 0:
            continue
        low, high = float(values.min()), float(values.max())
        declared = (dataset.features[key].get("info") or {}).get("gripper_range", "0-100")
        if declared == "0-1":
            if low < -GRIPPER_MARGIN / 100 or high > 1 + GRIPPER_MARGIN / 100:
                found.add(
                    "error",
                    "gripper range",
                    key,
                    f"gripper spans {low:.3g}–{high:.3g} but the feature declares 0–1",
                    "re-convert from the 0–100 source with `convert gripper --to 0-1`",
                )
        elif high <= 1.0 + 1e-6 and (high - low) > 0:
            found.add(
                "error",
                "gripper range",
                key,
                f"gripper spans {low:.3g}–{high:.3g}: looks like the 0–1 convention, this stack uses 0–100",
                "`convert gripper --to 0-100` into a new dataset (or declare info.gripper_range)",
            )
        elif low < -GRIPPER_MARGIN or high > 100 + GRIPPER_MARGIN:
            found.add(
                "error",
                "gripper range",
                key,
                f"gripper spans {low:.3g}–{high:.3g}, outside 0–100: a units mistake (radians? degrees?)",
                "re-record, or convert the gripper column into 0–100 before training",
            )


def _check_videos(dataset: LeRobotV3Dataset, found: _Collector) -> None:
    table = dataset.episodes_table
    for key in dataset.video_keys:
        checked_files: dict[Path, str | None] = {}
        for episode_index, length in zip(
            dataset.episode_indices, table.column("length").to_pylist(), strict=True
        ):
            where = f"episode {episode_index} {key}"
            try:
                path = dataset.video_path(episode_index, key)
            except KeyError:
                found.add("error", "video index", where, "no video file index in meta/episodes", "re-record")
                continue
            if path in checked_files and checked_files[path] is not None:
                continue
            try:
                count = len(dataset.video_frames(episode_index, key))
                checked_files[path] = None
            except VideoError as error:
                checked_files[path] = str(error)
                found.add("error", "video unreadable", where, str(error), "re-record or re-encode the video")
                continue
            if length and count != length:
                found.add(
                    "error",
                    "video length",
                    where,
                    f"{count} decodable frames for an episode of {length}",
                    "re-record the episode (or fix its from/to timestamps in meta/episodes)",
                )


def _lossy(feature: dict[str, Any]) -> bool:
    """Colour cameras are compared with a tolerance (video is lossy); depth maps are stored losslessly."""
    return feature.get("dtype") in VISUAL_DTYPES and not is_depth_feature(feature)


def _close(a: np.ndarray, b: np.ndarray, visual: bool) -> bool:
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape:
        return False
    if visual:
        return bool(np.all(np.abs(a - b) <= IMAGE_ABSOLUTE_TOLERANCE))
    scale = np.maximum(np.abs(a), np.abs(b)) + 1e-3
    return bool(np.all(np.abs(a - b) <= VECTOR_RELATIVE_TOLERANCE * scale))


def _check_stats_match(
    dataset: LeRobotV3Dataset,
    found: _Collector,
    sample_episodes: int,
    seed: int,
    frames: dict[int, dict[str, np.ndarray]],
) -> None:
    stats = None
    try:
        stats = dataset.stats
    except (json.JSONDecodeError, ValueError):
        return
    if not stats:
        return
    indices = [index for index in dataset.episode_indices if index in frames]
    if not indices:
        return
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(indices, size=min(sample_episodes, len(indices)), replace=False).tolist())
    recomputed = _recompute_episode_stats(dataset, chosen, frames)
    mismatched = _check_episode_stats(dataset, recomputed, found)
    _check_dataset_stats(dataset, stats, recomputed, mismatched, found)


def _recompute_episode_stats(
    dataset: LeRobotV3Dataset, chosen: Sequence[int], frames: dict[int, dict[str, np.ndarray]]
) -> dict[int, stats_lib.Stats]:
    """Stats of the chosen episodes recomputed from their frames and videos (skipping undecodable ones)."""
    recomputed: dict[int, stats_lib.Stats] = {}
    for episode_index in chosen:
        visual: dict[str, np.ndarray] = {}
        try:
            for key in dataset.camera_keys:
                visual[key] = dataset.video_frames(episode_index, key)
        except VideoError:
            continue  # reported by the video check
        if any(len(value) == 0 for value in visual.values()):
            continue
        recomputed[episode_index] = compute_episode_stats(dataset.features, frames[episode_index], visual)
    return recomputed


def _check_episode_stats(
    dataset: LeRobotV3Dataset, recomputed: dict[int, stats_lib.Stats], found: _Collector
) -> dict[str, list[int]]:
    """Compares stored per-episode stats with the recomputed ones; returns the episodes mismatched by key."""
    mismatched: dict[str, list[int]] = {}
    for episode_index, fresh in recomputed.items():
        stored = dataset.episode_stats(episode_index)
        for key, values in fresh.items():
            if key not in stored or "mean" not in stored[key]:
                continue
            visual_key = _lossy(dataset.features[key])
            if not (
                _close(stored[key]["mean"], values["mean"], visual_key)
                and _close(stored[key]["std"], values["std"], visual_key)
            ):
                mismatched.setdefault(key, []).append(episode_index)
    for key, episodes in mismatched.items():
        found.add(
            "error",
            "stats mismatch",
            key,
            f"per-episode stats differ from the data recomputed for episodes {episodes[:5]}",
            FIX_STATS,
        )
    return mismatched


def _check_dataset_stats(
    dataset: LeRobotV3Dataset,
    stats: dict[str, Any],
    recomputed: dict[int, stats_lib.Stats],
    mismatched: dict[str, list[int]],
    found: _Collector,
) -> None:
    """Compares ``meta/stats.json`` with the merge of all per-episode stats, or failing those with the
    stats recomputed on the sample (keys already reported per episode are skipped)."""
    all_stored = [dataset.episode_stats(index) for index in dataset.episode_indices]
    have_episode_stats = all(all_stored) and all(
        key in episode_stats for episode_stats in all_stored for key in stats
    )
    if have_episode_stats:
        reference = stats_lib.aggregate(all_stored)
        how = "the merge of the per-episode stats"
    elif recomputed:
        reference = stats_lib.aggregate(list(recomputed.values()))
        how = f"stats recomputed on {len(recomputed)} sampled episodes"
    else:
        return
    for key, values in stats.items():
        if key not in reference or key in mismatched or "mean" not in values or "std" not in values:
            continue
        visual_key = _lossy(dataset.features.get(key, {}))
        if not _stats_agree(values, reference[key], visual_key, exact=have_episode_stats):
            found.add(
                "error",
                "stats mismatch",
                key,
                f"meta/stats.json mean/std do not match {how}",
                FIX_STATS,
            )


def _stats_agree(values: dict[str, Any], reference: dict[str, Any], visual: bool, exact: bool) -> bool:
    """Whether stored mean/std match the reference's: within tolerance when the reference covers every
    episode (``exact``), within sampling noise when it was recomputed on a sample."""
    mean, std = np.asarray(values["mean"], float), np.asarray(values["std"], float)
    ref_mean, ref_std = reference["mean"], reference["std"]
    if exact:
        same = _close(mean, ref_mean, visual) and _close(std, ref_std, visual)
    else:
        # A sample of episodes only estimates the dataset: allow sampling noise, catch gross errors.
        same = bool(
            np.all(np.abs(mean - ref_mean) <= 0.5 * ref_std + 1e-3)
            and np.all((std <= 2 * ref_std + 1e-3) & (std >= 0.5 * ref_std - 1e-3))
        )
    if mean.shape != np.shape(ref_mean):
        same = False
    return same


# ------------------------------------------------------------------------------------------------------ fix
def fix_stats(root: str | Path, progress: bool = False) -> Path:
    """Recompute all stats from the frames; write them atomically after backing up the old files.

    Returns the backup directory."""
    dataset = LeRobotV3Dataset(root)
    dataset_stats, per_episode = recompute_stats(dataset, progress=progress)
    meta = dataset.root / "meta"
    backup = meta / f"backup-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%fZ')}"
    backup.mkdir(parents=True)
    if (meta / "stats.json").is_file():
        shutil.copy2(meta / "stats.json", backup / "stats.json")
    shutil.copytree(dataset.root / EPISODES_DIR, backup / "episodes")

    # Episodes parquet files: replace the stats columns with the recomputed ones, file by file.
    by_episode = dict(zip(dataset.episode_indices, per_episode, strict=True))
    for path in sorted((dataset.root / EPISODES_DIR).glob("*/*.parquet")):
        table = pq.read_table(path)
        new_rows = [
            _replace_stats(row, table.column_names, by_episode[int(row["episode_index"])])
            for row in table.to_pylist()
        ]
        temporary = path.with_name(path.name + ".tmp")
        write_episodes_table(dataset.root, new_rows, path=temporary)
        temporary.replace(path)
    write_json_atomic(dataset.root / STATS_PATH, stats_lib.to_json(dataset_stats))
    return backup


def _replace_stats(row: dict[str, Any], names: Sequence[str], fresh: stats_lib.Stats) -> dict[str, Any]:
    """The row with its ``stats/`` columns replaced, keeping LeRobot's column order."""
    new_stats = episode_stats_columns(fresh)
    result: dict[str, Any] = {}
    inserted = False
    for name in names:
        if name.startswith("stats/") or (name.startswith("meta/") and not inserted):
            if not inserted:
                result.update(new_stats)
                inserted = True
            if name.startswith("stats/"):
                continue
        result[name] = row[name]
    if not inserted:
        result.update(new_stats)
    return result


# ------------------------------------------------------------------------------------------------ printing
def print_report(report: DoctorReport) -> None:
    from rich.console import Console
    from rich.table import Table

    colours = {"error": "bold red", "warning": "yellow", "info": "green"}
    table = Table(title=f"dataset doctor: {report.root}", show_lines=False)
    for column in ("severity", "check", "where", "problem", "fix"):
        table.add_column(column, overflow="fold")
    order = {"error": 0, "warning": 1, "info": 2}
    for finding in sorted(report.findings, key=lambda f: order[f.severity]):
        table.add_row(
            f"[{colours[finding.severity]}]{finding.severity}[/]",
            finding.check,
            finding.where,
            finding.problem,
            finding.fix,
        )
    console = Console(width=max(Console().width, 160))
    console.print(table)
    errors, warnings = len(report.errors), sum(f.severity == "warning" for f in report.findings)
    console.print(f"{errors} error(s), {warnings} warning(s)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="doctor", description="Check a LeRobot v3 dataset; --fix repairs stats."
    )
    parser.add_argument("dataset", type=Path)
    parser.add_argument(
        "--fix", action="store_true", help="recompute stats (old files kept in meta/backup-*)"
    )
    parser.add_argument("--sample-episodes", type=int, default=8, help="episodes whose stats are recomputed")
    parser.add_argument("--json", type=Path, default=None, help="also write the findings as JSON here")
    args = parser.parse_args(argv)
    report = diagnose(args.dataset, sample_episodes=args.sample_episodes)
    print_report(report)
    if args.fix:
        if any(f.check == "layout" for f in report.findings):
            print("error: cannot fix a dataset whose layout is broken", file=sys.stderr)
            return 1
        try:
            backup = fix_stats(args.dataset, progress=True)
        except (DatasetError, VideoError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        print(f"stats recomputed; previous files kept in {backup}")
        report = diagnose(args.dataset, sample_episodes=args.sample_episodes)
        print_report(report)
    if args.json:
        write_json_atomic(args.json, report.to_dict())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
