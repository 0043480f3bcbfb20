"""Depth maps into LeRobot's image encoders: a preprocessor step that repeats a one-channel image three times.

LeRobot 0.6.1 types a depth map as a VISUAL feature of shape (1, H, W) (``dataset_to_policy_features``), but
ACT's and Diffusion's ResNets (and the VLMs' vision towers) take three channels. The step runs last in the
preprocessor, after normalisation with the depth map's own one-value stats, so the encoder sees the
normalised depth in every channel. It is saved in ``policy_preprocessor.json`` by its import path (not in
LeRobot's registry), so any LeRobot that can import this module — our adapter, ``lerobot-eval`` through our
plugin — rebuilds it when it loads the checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from lerobot.configs.types import FeatureType, PipelineFeatureType, PolicyFeature
from lerobot.processor.pipeline import ObservationProcessorStep


@dataclass
class RepeatDepthChannelsStep(ObservationProcessorStep):
    """(B, 1, H, W) images under ``keys`` → (B, 3, H, W)."""

    keys: list[str] = field(default_factory=list)
    channels: int = 3

    def observation(self, observation: dict[str, Any]) -> dict[str, Any]:
        for key in self.keys:
            value = observation.get(key)
            if isinstance(value, torch.Tensor) and value.ndim >= 3 and value.shape[-3] == 1:
                observation[key] = value.expand(*value.shape[:-3], self.channels, *value.shape[-2:])
        return observation

    def get_config(self) -> dict[str, Any]:
        return {"keys": list(self.keys), "channels": self.channels}

    def transform_features(
        self, features: dict[PipelineFeatureType, dict[str, PolicyFeature]]
    ) -> dict[PipelineFeatureType, dict[str, PolicyFeature]]:
        observation = dict(features.get(PipelineFeatureType.OBSERVATION, {}))
        for key in self.keys:
            feature = observation.get(key)
            if feature is not None and feature.type is FeatureType.VISUAL and feature.shape[0] == 1:
                observation[key] = PolicyFeature(feature.type, (self.channels, *feature.shape[1:]))
        return {**features, PipelineFeatureType.OBSERVATION: observation}


def one_channel_images(input_features: dict[str, PolicyFeature]) -> list[str]:
    """Keys of the VISUAL inputs with one channel (depth maps)."""
    return [
        key
        for key, feature in input_features.items()
        if feature.type is FeatureType.VISUAL and int(feature.shape[0]) == 1
    ]


def add_depth_step(preprocessor: Any, input_features: dict[str, PolicyFeature]) -> None:
    """Append the step to a freshly built preprocessor when the policy has one-channel images."""
    keys = one_channel_images(input_features)
    if keys and not any(isinstance(step, RepeatDepthChannelsStep) for step in preprocessor.steps):
        preprocessor.steps = [*preprocessor.steps, RepeatDepthChannelsStep(keys=keys)]
