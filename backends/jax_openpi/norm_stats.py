"""Normalisation statistics (mean, std, q01, q99) in openpi's ``norm_stats.json`` format.

The file is ``{"norm_stats": {"state": {"mean": [...], "std": [...], "q01": [...], "q99": [...]},
"actions": {...}}}``; keys name the model-side quantities after the data transforms (gripper 0–1, joint
actions relative to the state), exactly what the normaliser sees.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from libs.errors import LabError

NORM_STATS_FILE = "norm_stats.json"
REQUIRED_KEYS = ("state", "actions")
#: Floor on std and on (q99 - q01) / 2, in the normalised quantity's units (degrees, gripper 0–1): a
#: dimension that never moves in the data would otherwise be divided by ~0, and the smallest deviation at
#: evaluation would reach ±thousands (the tiny-std bug).
MIN_SPREAD = 0.05
#: The floors for ``environment_state``: 1 cm for positions (metres; the block's spread over a dataset is a
#: few cm, which must stay resolved) and 0.1 for quaternion components, which demonstrations barely move
#: (a block lies flat: x, y ≈ 0) but a policy that knocks the block over swings across [-1, 1]; with a
#: 0.01 floor a tumbled block reads as ±20 normalised and trips the harness's broken-stats check.
MIN_SPREAD_POSITION_M = 0.01
MIN_SPREAD_QUATERNION = 0.1


def environment_state_min_spread(names: Sequence[str] | None, dim: int) -> np.ndarray:
    """Per-dimension floors for ``environment_state`` from its feature names (``block_q*`` are quaternion
    components); without names every dimension gets the position floor."""
    if names is None or len(names) != dim:
        return np.full(dim, MIN_SPREAD_POSITION_M)
    return np.array(
        [MIN_SPREAD_QUATERNION if name.startswith("block_q") else MIN_SPREAD_POSITION_M for name in names]
    )


class MissingNormStatsError(LabError, FileNotFoundError):
    """No usable norm_stats.json where one is required; the message names the command that makes it."""


@dataclass(frozen=True)
class NormStats:
    mean: np.ndarray
    std: np.ndarray
    q01: np.ndarray | None = None
    q99: np.ndarray | None = None

    def to_json(self) -> dict[str, list[float] | None]:
        def listed(value: np.ndarray | None) -> list[float] | None:
            return None if value is None else np.asarray(value, dtype=np.float64).tolist()

        fields = {"mean": self.mean, "std": self.std, "q01": self.q01, "q99": self.q99}
        return {name: listed(value) for name, value in fields.items()}

    @classmethod
    def from_json(cls, data: Mapping[str, list[float] | None]) -> NormStats:
        def array(value: list[float] | None) -> np.ndarray | None:
            return None if value is None else np.asarray(value, dtype=np.float64)

        return cls(
            mean=np.asarray(data["mean"], dtype=np.float64),
            std=np.asarray(data["std"], dtype=np.float64),
            q01=array(data.get("q01")),
            q99=array(data.get("q99")),
        )


def stats_of(values: np.ndarray, min_spread: float | np.ndarray = MIN_SPREAD) -> NormStats:
    """Statistics over every axis but the last (the feature axis), spreads floored at ``min_spread`` (one
    floor, or one per feature)."""
    flat = np.asarray(values, dtype=np.float64).reshape(-1, np.shape(values)[-1])
    if flat.shape[0] < 2:
        raise ValueError(f"norm stats need at least 2 vectors, got {flat.shape[0]}")
    q01, q99 = np.quantile(flat, [0.01, 0.99], axis=0)
    middle = (q01 + q99) / 2.0
    half_range = np.maximum((q99 - q01) / 2.0, min_spread)
    std = np.maximum(flat.std(axis=0), min_spread)
    return NormStats(mean=flat.mean(axis=0), std=std, q01=middle - half_range, q99=middle + half_range)


def save_norm_stats(directory: Path | str, stats: Mapping[str, NormStats]) -> Path:
    path = Path(directory) / NORM_STATS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"norm_stats": {key: value.to_json() for key, value in stats.items()}}
    path.write_text(json.dumps(payload, indent=2))
    return path


def load_norm_stats(directory: Path | str, *, how_to_make: str = "") -> dict[str, NormStats]:
    """Reads ``<directory>/norm_stats.json``; raises MissingNormStatsError (one line) when it is absent,
    unreadable or lacks the state/actions entries."""
    path = Path(directory) / NORM_STATS_FILE
    fix = f": {how_to_make}" if how_to_make else ""
    if not path.is_file():
        raise MissingNormStatsError(f"no norm stats at {path}{fix}")
    try:
        entries = json.loads(path.read_text())["norm_stats"]
        stats = {key: NormStats.from_json(value) for key, value in entries.items()}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise MissingNormStatsError(f"norm stats at {path} are unreadable ({error}){fix}") from error
    missing = [key for key in REQUIRED_KEYS if key not in stats]
    if missing:
        raise MissingNormStatsError(f"norm stats at {path} lack {missing}{fix}")
    for key, value in stats.items():
        if not (np.all(np.isfinite(value.mean)) and np.all(np.isfinite(value.std))):
            raise MissingNormStatsError(f"norm stats at {path} have non-finite values for {key!r}{fix}")
    return stats
