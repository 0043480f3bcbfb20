"""Test helpers for the input-drift check: a checkpoint card's training statistics edited the way a
dataset recorded unlike the env would have them (kept out of any test module, as the import rules ask).

Each mismatch maps the card's ``stats`` (and ``fps``) to what a dataset with that mistake would carry, with
the cause ``libs.evaluation.plan.input_drift`` must name for it."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

STATE_KEY = "observation.state"
ACTION_KEY = "action"
IMAGE_PREFIX = "observation.images."
VECTOR_STATS = ("mean", "std", "min", "max", "q01", "q10", "q50", "q90", "q99")
#: Shoulder pan and shoulder lift exchanged, in state and action.
SWAPPED_JOINTS = (1, 0, 2, 3, 4, 5)
DARKER = 0.55


def _vectors(stats: dict[str, Any], change: Callable[[np.ndarray], np.ndarray]) -> dict[str, Any]:
    for key in (STATE_KEY, ACTION_KEY):
        for name in VECTOR_STATS:
            if name in stats.get(key, {}):
                stats[key][name] = change(np.asarray(stats[key][name], dtype=float)).tolist()
    return stats


def _images(stats: dict[str, Any], change: Callable[[str, np.ndarray], np.ndarray]) -> dict[str, Any]:
    for key in [key for key in stats if key.startswith(IMAGE_PREFIX) and not key.endswith("_depth")]:
        for name in VECTOR_STATS:
            if name in stats[key]:
                stats[key][name] = change(name, np.asarray(stats[key][name], dtype=float)).tolist()
    return stats


def permuted_joints(stats: dict[str, Any]) -> dict[str, Any]:
    return _vectors(stats, lambda values: values[list(SWAPPED_JOINTS)])


def reversed_channels(stats: dict[str, Any]) -> dict[str, Any]:
    return _images(stats, lambda name, values: values[::-1])


def exchanged_cameras(stats: dict[str, Any]) -> dict[str, Any]:
    cameras = sorted(key for key in stats if key.startswith(IMAGE_PREFIX) and not key.endswith("_depth"))
    first, second = cameras[0], cameras[1]
    stats[first], stats[second] = stats[second], stats[first]
    return stats


def radians_trained(stats: dict[str, Any]) -> dict[str, Any]:
    """Statistics 57.3 times the env's: the data was in another unit than the env's."""
    return _vectors(stats, lambda values: values * (180.0 / math.pi))


def darker_scene(stats: dict[str, Any]) -> dict[str, Any]:
    """Image statistics of a scene lit at ``DARKER`` of the env's light."""
    return _images(stats, lambda name, values: values * DARKER)


#: name -> (edit of a card's stats, the cause the check must name). ``fps`` is edited on the card itself.
MISMATCHES: Mapping[str, tuple[Callable[[dict[str, Any]], dict[str, Any]] | None, str]] = {
    "permuted_joints": (permuted_joints, "permuted order"),
    "bgr": (reversed_channels, "channels reversed"),
    "exchanged_cameras": (exchanged_cameras, "cameras exchanged"),
    "radians": (radians_trained, "units or scale"),
    "darker": (darker_scene, "scene or lighting"),
    "fps": (None, "control rate"),
}
#: The training fps the ``fps`` mismatch gives the card (the env steps at 30 Hz).
MISMATCHED_FPS = 10.0


def mismatched_card_dict(card: Mapping[str, Any], mismatch: str) -> dict[str, Any]:
    """A card's dict (``CheckpointCard.to_dict``) with ``mismatch`` applied."""
    data = copy.deepcopy(dict(card))
    edit, _ = MISMATCHES[mismatch]
    if edit is None:
        data["fps"] = MISMATCHED_FPS
    else:
        data["stats"] = edit(data["stats"])
    return data
