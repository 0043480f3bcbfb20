"""The SO-101 env counting the camera images it draws: how tests and the speed benchmark see that images are
drawn only where a policy reads them (rendering on CPU costs per image)."""

from __future__ import annotations

from typing import Any

import numpy as np

from libs.sim.env import SO101PickPlaceEnv


class DrawCountingEnv(SO101PickPlaceEnv):
    """``SO101PickPlaceEnv`` with ``draws``: the camera images drawn since it was made."""

    draws = 0

    def render_camera(self, name: str, **kwargs: Any) -> np.ndarray:
        self.draws += 1
        return super().render_camera(name, **kwargs)

    def render_cameras(self, data: Any = None) -> dict[str, np.ndarray]:
        images = super().render_cameras(data)
        self.draws += len(images)
        return images
