"""SO-101 data transforms in openpi's conventions, each with an exact inverse.

A sample is a flat dict. Dataset and env samples use LeRobot keys (``observation.state``,
``observation.environment_state``, ``observation.images.<camera>``, ``action``, ``task``); the model side
uses openpi's keys (``observation/image``, ``observation/wrist_image``, ``observation/state``,
``observation/environment_state``, ``actions``, ``prompt``).

Every transform works on one sample or on a batch (leading dimensions broadcast) and has ``inverse()``.
The output path of a policy is literally the inverse of its input path applied to ``{state, actions}``,
so de-normalisation, absolute actions and the gripper scale cannot be forgotten on the way out.

Arithmetic runs in float64: for float32 inputs a forward-then-inverse round trip is bit-exact once cast
back to float32 (the float64 rounding error is far below half a float32 ulp).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from openpi_client import image_tools

from backends.jax_openpi.norm_stats import NormStats
from libs.errors import LabError

Sample = dict[str, Any]

BASE_IMAGE = "observation/image"
WRIST_IMAGE = "observation/wrist_image"
STATE = "observation/state"
ENVIRONMENT_STATE = "observation/environment_state"
ACTIONS = "actions"
PROMPT = "prompt"

#: index of the gripper in the SO-101 state and joint action vectors
GRIPPER_INDEX = 5
#: env gripper units: 0 = closed, 100 = open; the model sees 0–1
GRIPPER_ENV_RANGE = 100.0
#: joints are predicted relative to the current state, the gripper as an absolute opening
SO101_DELTA_MASK = (True, True, True, True, True, False)


class TransformError(LabError, ValueError):
    """A sample does not have what a transform needs; the message names the key and the fix."""


class Transform(Protocol):
    def __call__(self, sample: Sample) -> Sample: ...

    def inverse(self) -> Transform: ...


def _float64(array: Any) -> np.ndarray:
    return np.asarray(array, dtype=np.float64)


@dataclass(frozen=True)
class Pipeline:
    """Transforms applied in order; the inverse applies their inverses in reverse order."""

    transforms: tuple[Transform, ...]

    def __call__(self, sample: Sample) -> Sample:
        for transform in self.transforms:
            sample = transform(sample)
        return sample

    def inverse(self) -> Pipeline:
        return Pipeline(tuple(transform.inverse() for transform in reversed(self.transforms)))


@dataclass(frozen=True)
class RepackKeys:
    """Renames keys: ``mapping`` is {new key: old key}. Keys listed in ``optional`` may be absent;
    keys not named in the mapping are dropped (openpi's repack keeps only what it names)."""

    mapping: Mapping[str, str]
    optional: frozenset[str] = field(default_factory=frozenset)

    def __call__(self, sample: Sample) -> Sample:
        out: Sample = {}
        for new_key, old_key in self.mapping.items():
            if old_key in sample:
                out[new_key] = sample[old_key]
            elif new_key not in self.optional:
                raise TransformError(
                    f"sample has no key {old_key!r} (needed for {new_key!r}); it has {sorted(sample)}: "
                    "check the camera names in the config against the dataset/env"
                )
        return out

    def inverse(self) -> RepackKeys:
        # The way back carries only what the model returns (state, actions): every key is optional.
        inverted = {old: new for new, old in self.mapping.items()}
        return RepackKeys(inverted, frozenset(inverted))


def so101_repack(
    base_camera: str | None, wrist_camera: str | None, environment_state: bool = False
) -> RepackKeys:
    """LeRobot/env keys → openpi's keys. ``actions`` and ``prompt`` are optional (absent at inference); a
    camera given as None is not read (a state-based config has none); ``environment_state`` reads
    ``observation.environment_state``."""
    mapping = {
        BASE_IMAGE: f"observation.images.{base_camera}" if base_camera else None,
        WRIST_IMAGE: f"observation.images.{wrist_camera}" if wrist_camera else None,
        STATE: "observation.state",
        ENVIRONMENT_STATE: "observation.environment_state" if environment_state else None,
        ACTIONS: "action",
        PROMPT: "task",
    }
    return RepackKeys(
        {new: old for new, old in mapping.items() if old is not None}, optional=frozenset({ACTIONS, PROMPT})
    )


@dataclass(frozen=True)
class ScaleDimension:
    """Multiplies one dimension of the state and actions by ``factor`` (gripper 0–100 ⇄ 0–1)."""

    index: int = GRIPPER_INDEX
    factor: float = 1.0 / GRIPPER_ENV_RANGE
    keys: tuple[str, ...] = (STATE, ACTIONS)

    def __call__(self, sample: Sample) -> Sample:
        out = dict(sample)
        for key in self.keys:
            if key in out:
                value = _float64(out[key]).copy()
                value[..., self.index] *= self.factor
                out[key] = value
        return out

    def inverse(self) -> ScaleDimension:
        return ScaleDimension(self.index, 1.0 / self.factor, self.keys)


def gripper_to_unit() -> ScaleDimension:
    return ScaleDimension(GRIPPER_INDEX, 1.0 / GRIPPER_ENV_RANGE)


@dataclass(frozen=True)
class DeltaActions:
    """Actions become relative to the current state where ``mask`` is True (``to_delta``) or back to
    absolute (``not to_delta``). Actions have a time axis before the feature axis: (..., T, D)."""

    mask: tuple[bool, ...] = SO101_DELTA_MASK
    to_delta: bool = True

    def __call__(self, sample: Sample) -> Sample:
        if ACTIONS not in sample:
            return sample
        if STATE not in sample:
            raise TransformError(f"delta actions need {STATE!r} in the sample; it has {sorted(sample)}")
        dims = len(self.mask)
        state = _float64(sample[STATE])[..., :dims]
        actions = _float64(sample[ACTIONS]).copy()
        offset = np.expand_dims(np.where(np.asarray(self.mask), state, 0.0), axis=-2)
        actions[..., :dims] += -offset if self.to_delta else offset
        return {**sample, ACTIONS: actions}

    def inverse(self) -> DeltaActions:
        return DeltaActions(self.mask, not self.to_delta)


@dataclass(frozen=True)
class Normalize:
    """z-score ``(x - mean) / (std + eps)`` or quantile ``2 (x - q01) / (q99 - q01 + eps) - 1`` per key,
    as openpi does; ``inverse`` undoes it. Stats are sliced to the sample's width."""

    stats: Mapping[str, NormStats]
    use_quantiles: bool = False
    forward: bool = True
    eps: float = 1e-6

    def __post_init__(self) -> None:
        if self.use_quantiles:
            for key, stat in self.stats.items():
                if stat.q01 is None or stat.q99 is None:
                    raise TransformError(
                        f"quantile normalisation needs q01/q99 for {key!r}: recompute the norm stats"
                    )

    def _scale_and_offset(self, stat: NormStats, width: int) -> tuple[np.ndarray, np.ndarray]:
        if self.use_quantiles:
            low, high = _float64(stat.q01)[:width], _float64(stat.q99)[:width]
            return (high - low + self.eps) / 2.0, low + (high - low + self.eps) / 2.0
        return _float64(stat.std)[:width] + self.eps, _float64(stat.mean)[:width]

    def __call__(self, sample: Sample) -> Sample:
        out = dict(sample)
        for key, stat in self.stats.items():
            if key not in out:
                continue
            value = _float64(out[key])
            width = min(value.shape[-1], len(stat.mean))
            scale, offset = self._scale_and_offset(stat, width)
            result = value.copy()
            if self.forward:
                result[..., :width] = (value[..., :width] - offset) / scale
            else:
                result[..., :width] = value[..., :width] * scale + offset
            out[key] = result
        return out

    def inverse(self) -> Normalize:
        return Normalize(self.stats, self.use_quantiles, not self.forward, self.eps)


@dataclass(frozen=True)
class PadDimension:
    """Zero-pads the last axis of the state and actions to ``width`` (6 → 32), or cuts it back to
    ``original_width`` when ``pad`` is False."""

    width: int
    original_width: int
    pad: bool = True
    keys: tuple[str, ...] = (STATE, ACTIONS)

    def __call__(self, sample: Sample) -> Sample:
        out = dict(sample)
        for key in self.keys:
            if key not in out:
                continue
            value = np.asarray(out[key])
            if self.pad:
                if value.shape[-1] != self.original_width:
                    raise TransformError(
                        f"{key!r} has {value.shape[-1]} dims, expected {self.original_width}: "
                        "the dataset/env does not match this config"
                    )
                widths = [(0, 0)] * (value.ndim - 1) + [(0, self.width - self.original_width)]
                out[key] = np.pad(value, widths)
            else:
                out[key] = value[..., : self.original_width]
        return out

    def inverse(self) -> PadDimension:
        return PadDimension(self.width, self.original_width, not self.pad, self.keys)


@dataclass(frozen=True)
class ResizeImagesWithPad:
    """Resizes images to (height, width) keeping the aspect ratio and zero-padding the rest, like
    openpi's ``resize_with_pad``. Images are inputs only, so the inverse leaves samples unchanged."""

    height: int
    width: int
    keys: tuple[str, ...] = (BASE_IMAGE, WRIST_IMAGE)

    def __call__(self, sample: Sample) -> Sample:
        out = dict(sample)
        for key in self.keys:
            if key in out:
                image = np.asarray(out[key])
                if image.dtype != np.uint8:
                    raise TransformError(f"{key!r} must be uint8 HxWx3 RGB, got {image.dtype}")
                out[key] = image_tools.resize_with_pad(image, self.height, self.width)
        return out

    def inverse(self) -> Identity:
        return Identity()


@dataclass(frozen=True)
class Identity:
    def __call__(self, sample: Sample) -> Sample:
        return sample

    def inverse(self) -> Identity:
        return self


def so101_input_pipeline(
    *,
    base_camera: str | None,
    wrist_camera: str | None,
    norm_stats: Mapping[str, NormStats] | None,
    use_quantiles: bool,
    model_action_dim: int,
    image_size: tuple[int, int] | None,
    delta_mask: Sequence[bool] = SO101_DELTA_MASK,
    env_dim: int = 6,
    environment_state: bool = False,
) -> Pipeline:
    """Env/dataset sample → model sample. ``norm_stats`` uses openpi's keys (``state``, ``actions`` and,
    with ``environment_state``, ``environment_state``); ``norm_stats=None`` builds the pipeline that norm
    stats are computed on (everything up to normalisation); ``image_size=None`` leaves images as they are.
    The environment state is normalised like the state and otherwise left as it is."""
    steps: list[Transform] = [
        so101_repack(base_camera, wrist_camera, environment_state),
        gripper_to_unit(),
    ]
    if any(delta_mask):
        steps.append(DeltaActions(tuple(delta_mask)))
    if norm_stats is None:
        return Pipeline(tuple(steps))
    normalised = {STATE: norm_stats["state"], ACTIONS: norm_stats["actions"]}
    if environment_state:
        if "environment_state" not in norm_stats:
            raise TransformError(
                "norm stats have no 'environment_state' entry but this config reads the environment "
                "state: recompute them with compute_norm_stats on a dataset recorded with "
                "--environment-state"
            )
        normalised[ENVIRONMENT_STATE] = norm_stats["environment_state"]
    steps.append(Normalize(normalised, use_quantiles))
    steps.append(PadDimension(model_action_dim, env_dim))
    if image_size is not None:
        steps.append(ResizeImagesWithPad(*image_size))
    return Pipeline(tuple(steps))
