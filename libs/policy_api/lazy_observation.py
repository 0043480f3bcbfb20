"""Observations whose camera images are drawn on first read.

Rendering dominates a simulated episode: two 96×128 cameras cost ~6 ms a step against ~0.1 ms of physics,
yet a chunked policy (ACT executing 30 actions per inference) reads one observation in 30. A
``LazyObservation`` is an ordinary read-only ``Mapping`` with the keys of ``libs.policy_api.types``: the
joint state, environment state and task are plain values, and each image is drawn the first time its key
is read (then kept). Nothing has to cooperate: a policy that reads an image gets it, one that skips a step
(its action queue is not empty) costs that step nothing, and so do the recorder, videos and whiskers when
they do not look.

Testing a key (``key in observation``), listing keys and asking an image's shape and dtype
(``array_signature``, what the contract checks need) draw nothing. Reading every value
(``dict(observation)``, ``.items()``, ``{**observation}``) draws every image, as eager rendering would.

An image shows the simulator at the moment the observation was made, whenever it is read: its ``draw``
callable comes from the env, which hands an observation still held (with images not drawn) a copy of its
state before it steps on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class LazyImage:
    """One image not drawn yet: ``draw()`` renders it; ``shape`` and ``dtype`` are what it will have."""

    draw: Callable[[], np.ndarray]
    shape: tuple[int, ...]
    dtype: np.dtype


class LazyObservation(Mapping[str, Any]):
    """A read-only observation: ``values`` as given, ``images`` drawn when first read (module docstring)."""

    __slots__ = ("_values", "_pending", "_keys")

    def __init__(self, values: Mapping[str, Any], images: Mapping[str, LazyImage]) -> None:
        overlap = set(values) & set(images)
        if overlap:
            raise ValueError(f"keys {sorted(overlap)} are given both as values and as lazy images")
        self._values: dict[str, Any] = dict(values)
        self._pending: dict[str, LazyImage] = dict(images)
        #: Fixed at creation, so iterating while reading (``.items()``) is safe as images move to values.
        self._keys: tuple[str, ...] = (*self._values, *self._pending)

    def __getitem__(self, key: str) -> Any:
        if key in self._values:
            return self._values[key]
        image = self._pending.get(key)
        if image is None:
            raise KeyError(key)
        value = image.draw()
        self._values[key] = value
        del self._pending[key]
        return value

    def __contains__(self, key: object) -> bool:  # Mapping's default would draw the image
        return key in self._values or key in self._pending

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"LazyObservation(drawn={sorted(self._values)}, not drawn={sorted(self._pending)})"

    @property
    def undrawn_keys(self) -> tuple[str, ...]:
        """Image keys nobody has read yet."""
        return tuple(self._pending)

    def array_signature(self, key: str) -> tuple[tuple[int, ...], np.dtype]:
        """(shape, dtype) of ``key``'s value without drawing it."""
        image = self._pending.get(key)
        if image is not None:
            return tuple(image.shape), np.dtype(image.dtype)
        value = np.asarray(self[key])
        return value.shape, value.dtype

    def materialize(self) -> dict[str, Any]:
        """A plain dict of every value, drawing every image not drawn yet."""
        return {key: self[key] for key in list(self)}


def array_signature(observation: Mapping[str, Any], key: str) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of ``observation[key]``, without drawing it when ``observation`` is lazy."""
    if isinstance(observation, LazyObservation):
        return observation.array_signature(key)
    value = np.asarray(observation[key])
    return value.shape, value.dtype
