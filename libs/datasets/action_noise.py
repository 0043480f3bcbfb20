"""Demonstrations that show recovery: noise on the actions a demonstration *executes*, never on the labels.

As in DART (Laskey et al., 2017), the expert is rolled out with a perturbed controller while each frame
records the expert's own, clean action for the state it is in. The scripted expert's targets are absolute
poses along its plan, so after a perturbation its label points back to the plan: the dataset shows states
off the expert's path together with the correction, which is what a learned policy needs once its own
errors push it there. The gripper is never perturbed (its command decides the grasp, not the path).

The noise is temporally correlated (a first-order autoregressive process with time constant
``correlation_steps``), so the arm drifts off its path for a few steps as a learned policy's errors do,
instead of jittering around it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from libs.errors import LabError


class ActionNoiseError(LabError, ValueError):
    """Bad noise settings; the message names the fix."""


@dataclass(frozen=True)
class ActionNoise:
    """Stationary std ``std`` (action units: degrees per arm joint in ``joint`` mode, metres on x, y, z in
    ``ee`` mode) with ``correlation_steps`` control steps of memory."""

    std: float = 2.0
    correlation_steps: float = 8.0

    def __post_init__(self) -> None:
        if not math.isfinite(self.std) or self.std < 0:
            raise ActionNoiseError(f"noise std must be a finite number >= 0, got {self.std}")
        if not math.isfinite(self.correlation_steps) or self.correlation_steps < 1:
            raise ActionNoiseError(
                f"noise correlation must be >= 1 control step, got {self.correlation_steps}"
            )

    def process(self, seed: int, action_space: str) -> ActionNoiseProcess:
        """One episode's noise, a pure function of the episode seed."""
        return ActionNoiseProcess(self, np.random.default_rng([seed, 0xDA27]), action_space)


class ActionNoiseProcess:
    """Draws one episode's noise step by step (AR(1): ``n_t = a n_(t-1) + sqrt(1 - a^2) std e_t``)."""

    def __init__(self, noise: ActionNoise, rng: np.random.Generator, action_space: str) -> None:
        if action_space not in ("joint", "ee"):
            raise ActionNoiseError(f"action space {action_space!r} is unknown: use 'joint' or 'ee'")
        self._noise = noise
        self._rng = rng
        # Arm joints (5) in joint mode, the position (3) in ee mode; the rest (gripper, approach) untouched.
        self._dims = 5 if action_space == "joint" else 3
        self._decay = math.exp(-1.0 / noise.correlation_steps)
        self._state = rng.normal(0.0, noise.std, self._dims)

    def perturb(self, action: np.ndarray) -> np.ndarray:
        """The action to execute this step: ``action`` plus this step's noise (a new array)."""
        innovation = self._rng.normal(0.0, self._noise.std, self._dims)
        self._state = self._decay * self._state + math.sqrt(1.0 - self._decay**2) * innovation
        executed = np.array(action, dtype=np.float32, copy=True)
        executed[: self._dims] += self._state.astype(np.float32)
        return executed
