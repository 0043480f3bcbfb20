"""Test helpers shared by tests that train tiny policies (kept out of any test module, as the import rules
ask)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from libs.datasets.record import record_scripted_dataset
from libs.sim.scene_config import SceneConfig


def record_tiny_demonstrations(root: Path) -> Path:
    """Two scripted demonstrations with 48×64 camera images, 30 steps at most: enough to train a tiny
    policy a step or two."""
    scene = SceneConfig().with_image_size(48, 64)
    record_scripted_dataset(root, episodes=2, seed=0, scene=scene, max_steps=30, progress=False)
    return root


def record_tiny_state_demonstrations(root: Path) -> Path:
    """Two scripted demonstrations without cameras, with the object state: a state policy's tiny dataset."""
    scene = dataclasses.replace(SceneConfig().with_cameras([]), environment_state=True)
    record_scripted_dataset(root, episodes=2, seed=0, scene=scene, max_steps=30, progress=False)
    return root
