"""``EvaluableEnv``: what the episode loop and its observers need of an env (``SO101PickPlaceEnv`` is one)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np

from libs.policy_api.types import Observation
from libs.sim.outcome import EpisodeFigures


@runtime_checkable
class EvaluableEnv(Protocol):
    """A gymnasium-style env of the pick-and-place task, as the loop plays it."""

    #: ``joint`` or ``ee``: the actions ``step`` takes.
    action_space_name: str

    @property
    def block_position(self) -> np.ndarray:
        """The block's current world position (x, y, z), metres."""
        ...

    def reset(
        self, *, seed: int | None = None, options: Mapping[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]: ...

    def step(self, action: np.ndarray) -> tuple[Observation, float, bool, bool, dict[str, Any]]: ...

    def episode_figures(self) -> EpisodeFigures:
        """The simulator's figures of the episode so far (outcome, steps, pick, lift, IK)."""
        ...
