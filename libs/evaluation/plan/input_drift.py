"""Do the inputs an evaluation feeds a checkpoint look like the data it was trained on?

A checkpoint's card carries its training dataset's statistics (``meta/stats.json``: per dimension of the
state and action, per channel of each camera; LeRobot layout) and the dataset's frame rate. A sample of the
env's own first observations (``ObservedInputs``: states, per-frame channel means of each camera, the env's
own actions and the policy's first predicted actions) is compared with them, and every difference is named
with its likely cause in one line (``Drift``):

- ``permuted order``: the observed per-dimension statistics match training's under a permutation (the best
  of all permutations is found by its total cost);
- ``units or scale``: they match once training's are multiplied by one factor (degrees vs radians, 0–1 vs
  0–255 or 0–100);
- ``channels reversed`` (BGR vs RGB) and ``cameras exchanged``: the per-channel means of the cameras match
  training's with the channels reversed, or under another assignment of cameras;
- ``scene or lighting``: the images are brighter or darker (or otherwise unlike) training's;
- ``control rate``: the training data's fps is not the env's control rate;
- ``actions out of range``: the policy's first predicted actions lie far outside training's range.

The thresholds are generous on purpose: a few episodes of the training scene never trip them (the sample
is compared in units of training's std and range), while the mistakes above are many times larger. Numpy
only; the worker that gathers the sample and refuses is ``libs.evaluation.play.input_check``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from libs.policy_api.contracts import ContractViolation

STATE_KEY = "observation.state"
ENVIRONMENT_STATE_KEY = "observation.environment_state"
ACTION_KEY = "action"
IMAGE_PREFIX = "observation.images."
DEPTH_SUFFIX = "_depth"

#: A dimension's cost (z-score of its mean + range excess) above this is drift.
VECTOR_COST_LIMIT = 3.0
#: A permutation is named when it lowers the total cost of the dimensions this much (the identity's total
#: is a fraction of this on a checkpoint's own scene, so no permutation can beat it by as much).
PERMUTATION_GAIN = 1.0
#: A camera channel's mean off by more than this many training pixel std is drift (a few episodes of the
#: training scene stay within 0.15; channels reversed, cameras exchanged, another lighting: 0.6 and more).
IMAGE_Z_LIMIT = 0.5
#: Cameras are called exchanged when another assignment lowers their total cost this much.
CAMERA_GAIN = 0.5
#: Factors training's statistics may differ from the env's by (units or scale), with their usual reason.
SCALE_FACTORS: tuple[tuple[float, str], ...] = (
    (180.0 / math.pi, "radians observed vs degrees in training"),
    (math.pi / 180.0, "degrees observed vs radians in training"),
    (100.0, "0–1 observed vs 0–100 in training"),
    (0.01, "0–100 observed vs 0–1 in training"),
    (255.0, "0–1 observed vs 0–255 in training"),
    (1.0 / 255.0, "0–255 observed vs 0–1 in training"),
    (1000.0, "metres observed vs millimetres in training"),
    (0.001, "millimetres observed vs metres in training"),
)
#: The env's control rate and the training data's fps may differ by this fraction.
FPS_TOLERANCE = 0.05
#: A predicted action this many training ranges beyond training's min or max is out of range...
ACTION_RANGE_MARGIN = 0.5
#: ...and this fraction of the predicted values out of range is drift.
ACTION_OUT_FRACTION = 0.2
#: Permutations are searched for up to this many dimensions (8! = 40320 candidates).
MAX_PERMUTED_DIMS = 8


# A ContractViolation (the env breaks what the checkpoint was trained on), so a Ray worker's refusal reaches
# the sweep as its one line, as a training-scene mismatch does.
class InputDriftError(ContractViolation):
    """A checkpoint's inputs differ from its training data; the message names the cause and the fix."""

    #: Every drift found (the message names the first).
    drifts: tuple[Drift, ...] = ()


@dataclass(frozen=True)
class Drift:
    """One input that differs from training: the feature, its likely cause, and one line saying so."""

    feature: str
    cause: str
    line: str

    def to_dict(self) -> dict[str, str]:
        return {"feature": self.feature, "cause": self.cause, "line": self.line}


@dataclass
class ObservedInputs:
    """What the env gave (and the policy answered) on the first observations.

    ``vectors``: feature key -> (frames, dims) values (``observation.state``, the env's own ``action``);
    ``image_means``: camera key -> (frames, 3) per-frame channel means on the 0–1 scale;
    ``predicted_actions``: (n, action_dim) actions of the policy's first chunks (None: not asked).
    """

    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    image_means: dict[str, np.ndarray] = field(default_factory=dict)
    predicted_actions: np.ndarray | None = None
    control_hz: float | None = None


def find_drift(
    stats: Mapping[str, Any] | None, observed: ObservedInputs, training_fps: float | None = None
) -> list[Drift]:
    """Every input of ``observed`` that differs from the training ``stats``, with its likely cause."""
    found: list[Drift] = []
    if training_fps and observed.control_hz:
        found += _rate_drift(float(training_fps), float(observed.control_hz))
    stats = stats or {}
    for key, values in observed.vectors.items():
        if key in stats:
            found += _vector_drift(key, np.asarray(values, dtype=np.float64), stats[key])
    found += _image_drift(stats, observed.image_means)
    if observed.predicted_actions is not None and ACTION_KEY in stats:
        found += _predicted_action_drift(np.asarray(observed.predicted_actions, float), stats[ACTION_KEY])
    return found


def _rate_drift(training_fps: float, control_hz: float) -> list[Drift]:
    if abs(control_hz / training_fps - 1.0) <= FPS_TOLERANCE:
        return []
    return [
        Drift(
            "fps",
            "control rate",
            f"control rate differs from training: the training data was recorded at {training_fps:g} fps, "
            f"the env steps at {control_hz:g} Hz",
        )
    ]


# --------------------------------------------------------------------------- vectors (state, action)


#: Quantile statistics a dataset's stats may carry (LeRobot 0.6 writes them), with their levels.
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}


@dataclass(frozen=True)
class _VectorStats:
    mean: np.ndarray
    std: np.ndarray
    low: np.ndarray
    high: np.ndarray
    #: level -> per-dimension quantile, for the levels the stats carry.
    quantiles: dict[float, np.ndarray] = field(default_factory=dict)

    @classmethod
    def of(cls, stats: Mapping[str, Any]) -> _VectorStats:
        def get(name: str) -> np.ndarray:
            return np.asarray(stats[name], dtype=np.float64).ravel()

        quantiles = {level: get(name) for name, level in QUANTILES.items() if name in stats}
        return cls(get("mean"), get("std"), get("min"), get("max"), quantiles)

    def scaled(self, factor: float) -> _VectorStats:
        quantiles = {level: values * factor for level, values in self.quantiles.items()}
        return _VectorStats(
            self.mean * factor, self.std * factor, self.low * factor, self.high * factor, quantiles
        )

    @property
    def width(self) -> np.ndarray:
        """The range each z-score and excess is measured in, floored at a quarter of the values' magnitude:
        a short dataset (two episodes of 30 steps) has narrow ranges, while a permutation or another unit
        is off by many times the magnitude."""
        magnitude = np.maximum(np.abs(self.low), np.abs(self.high))
        return np.maximum.reduce([self.high - self.low, 0.25 * magnitude, np.full_like(magnitude, 1e-6)])


def cost_matrix(values: np.ndarray, stats: _VectorStats) -> np.ndarray:
    """cost[i, j]: how unlike training's dimension j the observed dimension i is: the mean distance of its
    mean and quantiles from training's, in training's std (floored at a quarter of the range), plus 2 × its
    mean excess beyond training's range, in ranges. Quantiles tell apart dimensions with alike means."""
    width = stats.width
    std = np.maximum(stats.std, 0.25 * width)
    distances = [np.abs(values.mean(axis=0)[:, None] - stats.mean[None, :])]
    for level, trained in stats.quantiles.items():
        distances.append(np.abs(np.quantile(values, level, axis=0)[:, None] - trained[None, :]))
    z = np.mean(distances, axis=0) / std[None, :]
    below = np.maximum(0.0, stats.low[None, None, :] - values[:, :, None])
    above = np.maximum(0.0, values[:, :, None] - stats.high[None, None, :])
    excess = ((below + above) / width[None, None, :]).mean(axis=0)
    return z + 2.0 * excess


def best_permutation(costs: np.ndarray) -> tuple[tuple[int, ...], float]:
    """The assignment of observed dimensions to training's with the lowest total cost (order[i] = the
    training dimension observed dimension i matches), and that cost."""
    size = costs.shape[0]
    orders = np.array(list(itertools.permutations(range(size))), dtype=np.int64)
    totals = costs[np.arange(size)[None, :], orders].sum(axis=1)
    best = int(np.argmin(totals))
    return tuple(int(i) for i in orders[best]), float(totals[best])


def _vector_drift(key: str, values: np.ndarray, feature_stats: Mapping[str, Any]) -> list[Drift]:
    if values.ndim != 2 or values.shape[0] == 0:
        return []
    stats = _VectorStats.of(feature_stats)
    if stats.mean.shape[0] != values.shape[1]:
        return []  # a shape mismatch is the contract checks' to name
    costs = cost_matrix(values, stats)
    diagonal = np.diag(costs)
    what = _feature_name(key)
    flagged = diagonal.max() > VECTOR_COST_LIMIT
    if flagged:
        scale = _scale_drift(key, what, values, stats, diagonal)
        if scale is not None:
            return [scale]
    if values.shape[1] <= MAX_PERMUTED_DIMS:
        order, total = best_permutation(costs)
        matched = costs[np.arange(len(order)), list(order)]
        gain = float(diagonal.sum()) - total
        if order != tuple(range(len(order))) and matched.max() <= VECTOR_COST_LIMIT:
            if gain >= PERMUTATION_GAIN or (flagged and gain > 0):
                return [Drift(key, "permuted order", _permutation_line(what, order))]
    if not flagged:
        return []
    worst = int(np.argmax(diagonal))
    observed_mean = float(values[:, worst].mean())
    return [
        Drift(
            key,
            "differs from training",
            f"{what} differs from training: dimension {worst} averages {observed_mean:.3g}, training's "
            f"mean is {stats.mean[worst]:.3g} (std {stats.std[worst]:.3g}, range {stats.low[worst]:.3g}"
            f"..{stats.high[worst]:.3g})",
        )
    ]


def _scale_drift(
    key: str, what: str, values: np.ndarray, stats: _VectorStats, diagonal: np.ndarray
) -> Drift | None:
    """Units or scale: every dimension fits once training's values are divided by one factor, or else
    each drifting dimension fits under a factor of its own (one joint in other units: the gripper's 0–100)."""
    fitted = {factor: np.diag(cost_matrix(values, stats.scaled(1.0 / factor))) for factor, _ in SCALE_FACTORS}
    # The best fit, not the first: a gripper on 0–100 fed to 0–1 training fits ÷57.3 (degrees vs radians)
    # within the limit too, but ÷100 fits it exactly.
    whole = min(SCALE_FACTORS, key=lambda pair: fitted[pair[0]].max())
    if fitted[whole[0]].max() <= VECTOR_COST_LIMIT:
        return Drift(key, "units or scale", _scale_line(what, *whole))
    drifting = np.flatnonzero(diagonal > VECTOR_COST_LIMIT)
    lines = []
    for dimension in drifting:
        factor, reason = min(SCALE_FACTORS, key=lambda pair: fitted[pair[0]][dimension])
        if fitted[factor][dimension] > VECTOR_COST_LIMIT:
            return None
        lines.append(f"dimension {dimension} divided by {factor:.4g} ({reason})")
    noun = "joint" if what in ("state", "action") else "dimension"
    return Drift(
        key,
        "units or scale",
        f"{what} units or scale differ from training for some {noun}s: the observed values match "
        f"training's with {'; '.join(lines)}",
    )


def _feature_name(key: str) -> str:
    return {STATE_KEY: "state", ACTION_KEY: "action", ENVIRONMENT_STATE_KEY: "environment state"}.get(
        key, key
    )


def _scale_line(what: str, factor: float, reason: str) -> str:
    return (
        f"{what} units or scale differ from training: the observed values match training's divided by "
        f"{factor:.4g} ({reason})"
    )


def _permutation_line(what: str, order: tuple[int, ...]) -> str:
    noun = "joint" if what in ("state", "action") else "dimension"
    return (
        f"{what} {noun} order differs from training: the observed per-{noun} statistics match training's "
        f"under permutation {order} (observed {noun} i is training's {noun} order[i])"
    )


# --------------------------------------------------------------------------- images


def _image_drift(stats: Mapping[str, Any], image_means: Mapping[str, np.ndarray]) -> list[Drift]:
    """Per camera: the per-channel mean against training's, in training's pixel std; cameras exchanged and
    channels reversed are tried before calling it another scene or lighting."""
    keys = [
        key
        for key in image_means
        if key in stats and not key.endswith(DEPTH_SUFFIX) and np.asarray(stats[key]["mean"]).size == 3
    ]
    if not keys:
        return []
    observed = {
        key: np.asarray(image_means[key], dtype=np.float64).reshape(-1, 3).mean(axis=0) for key in keys
    }
    trained = {key: _channel_stats(stats[key]) for key in keys}
    scale = _image_scale_drift(keys, trained)
    if scale:
        return scale
    off = {key: _image_z(observed[key], *trained[key]) for key in keys}
    if max(float(z.max()) for z in off.values()) <= IMAGE_Z_LIMIT:
        return []
    swapped = _exchanged_cameras(keys, observed, trained, off)
    if swapped:
        return swapped
    return [
        _camera_drift(key, observed[key], *trained[key]) for key in keys if off[key].max() > IMAGE_Z_LIMIT
    ]


def _channel_stats(feature_stats: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    mean = np.asarray(feature_stats["mean"], dtype=np.float64).ravel()
    std = np.asarray(feature_stats["std"], dtype=np.float64).ravel()
    return mean, np.maximum(std, 0.02)


def _image_z(observed: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return np.abs(observed - mean) / std


def _image_scale_drift(keys: list[str], trained: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> list[Drift]:
    """Image statistics on the 0–255 scale: the env's pixels are compared on 0–1 (LeRobot's layout)."""
    return [
        Drift(
            key,
            "units or scale",
            f"{key} units or scale differ from training: training's image statistics are on the 0–255 "
            f"scale (mean {np.round(trained[key][0], 1).tolist()}), the images are compared on 0–1",
        )
        for key in keys
        if trained[key][0].max() > 1.5
    ]


def _exchanged_cameras(
    keys: list[str],
    observed: Mapping[str, np.ndarray],
    trained: Mapping[str, tuple[np.ndarray, np.ndarray]],
    off: Mapping[str, np.ndarray],
) -> list[Drift]:
    """The cameras (or one camera's channels) that match training's under another assignment."""
    if len(keys) > 1:
        costs = np.array([[_image_z(observed[a], *trained[b]).max() for b in keys] for a in keys])
        order, total = best_permutation(costs)
        matched = costs[np.arange(len(keys)), list(order)]
        if order != tuple(range(len(keys))) and matched.max() <= IMAGE_Z_LIMIT:
            if total <= np.trace(costs) - CAMERA_GAIN:
                pairs = ", ".join(
                    f"{keys[i]} looks like training's {keys[j]}" for i, j in enumerate(order) if i != j
                )
                return [
                    Drift("cameras", "cameras exchanged", f"cameras exchanged relative to training: {pairs}")
                ]
    reversed_found = []
    for key in keys:
        mean, std = trained[key]
        if (
            off[key].max() > IMAGE_Z_LIMIT
            and _image_z(observed[key], mean[::-1], std[::-1]).max() <= IMAGE_Z_LIMIT
        ):
            reversed_found.append(
                Drift(
                    key,
                    "channels reversed",
                    f"{key} channels reversed relative to training (BGR vs RGB): the observed channel means "
                    f"{np.round(observed[key], 3).tolist()} match training's {np.round(mean, 3).tolist()} in "
                    "reverse order",
                )
            )
    return reversed_found


def _camera_drift(key: str, observed: np.ndarray, mean: np.ndarray, std: np.ndarray) -> Drift:
    z = (observed - mean) / std
    if np.all(z < 0) or np.all(z > 0):
        tone = "darker" if z.mean() < 0 else "brighter"
        what = f"{tone} than training"
    else:
        what = "coloured unlike training"
    return Drift(
        key,
        "scene or lighting",
        f"{key} looks like another scene or lighting: its images are {what} (channel means "
        f"{np.round(observed, 3).tolist()} vs training's {np.round(mean, 3).tolist()}, "
        f"{np.abs(z).max():.1f} training std off)",
    )


# --------------------------------------------------------------------------- predicted actions


def _predicted_action_drift(actions: np.ndarray, feature_stats: Mapping[str, Any]) -> list[Drift]:
    """The policy's first predicted actions far outside training's range (a de-normalisation or units
    mistake: the policy answers in other units than the env's)."""
    stats = _VectorStats.of(feature_stats)
    actions = actions.reshape(-1, actions.shape[-1]) if actions.size else actions.reshape(0, 0)
    if actions.shape[0] == 0 or actions.shape[1] != stats.mean.shape[0]:
        return []
    margin = ACTION_RANGE_MARGIN * stats.width
    outside = (actions < stats.low - margin) | (actions > stats.high + margin)
    fraction = outside.mean(axis=0)
    if fraction.max() <= ACTION_OUT_FRACTION:
        return []
    worst = int(np.argmax(fraction))
    return [
        Drift(
            "predicted action",
            "actions out of range",
            f"the policy's first predicted actions lie outside training's action range: dimension {worst} "
            f"spans {actions[:, worst].min():.3g}..{actions[:, worst].max():.3g}, training's "
            f"{stats.low[worst]:.3g}..{stats.high[worst]:.3g} (de-normalisation or units)",
        )
    ]


def drift_error(drifts: list[Drift], checkpoint: str, allow_flag: str) -> InputDriftError:
    """One line: the first drift's cause, how many more, and the fix."""
    more = (
        f" (and {len(drifts) - 1} more: {'; '.join(d.cause for d in drifts[1:])})" if len(drifts) > 1 else ""
    )
    fix = "fix the env's inputs (or evaluate a checkpoint trained on this env's data), or retrain"
    if drifts[0].cause == "actions out of range":  # the policy's outputs, not the env's inputs
        fix = (
            "de-normalise the policy's actions with its training stats (load the checkpoint's "
            "post-processor) and return them in the env's units (degrees, gripper 0–100)"
        )
    error = InputDriftError(f"{checkpoint}: {drifts[0].line}{more} — {fix}; {allow_flag} evaluates anyway")
    error.drifts = tuple(drifts)
    return error
