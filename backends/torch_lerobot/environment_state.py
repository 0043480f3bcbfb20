"""Privileged object state into the VLAs: a preprocessor step that appends it to the joint state.

SmolVLA and Pi0 read one state vector (``observation.state``, padded to ``max_state_dim``) and nothing else:
``observation.environment_state`` — block pose and bowl position, LeRobot's ENV feature — never reaches
their networks, so a checkpoint trained "with the environment state" would in fact be blind to the block.
This step runs last in the preprocessor, after each vector was normalised with its own stats, and joins the
two, so the state projection sees ``[joints (6), object state (9)]`` (15 ≤ 32 dims: no model change).
ACT and Diffusion take the ENV feature themselves and never get this step.

Like ``depth_channels``, the step is saved in ``policy_preprocessor.json`` by its import path, so our
adapter and ``lerobot-eval`` (through our plugin) rebuild it when they load the checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from lerobot.configs.types import FeatureType, PipelineFeatureType, PolicyFeature
from lerobot.processor.pipeline import ObservationProcessorStep
from lerobot.utils.constants import OBS_ENV_STATE, OBS_STATE

#: Policies whose networks read only ``observation.state``.
STATE_ONLY_POLICIES: tuple[str, ...] = ("smolvla", "pi0")


@dataclass
class AppendEnvironmentStateStep(ObservationProcessorStep):
    """``observation.state`` (…, S) and ``observation.environment_state`` (…, E) → state (…, S + E)."""

    def observation(self, observation: dict[str, Any]) -> dict[str, Any]:
        state, environment = observation.get(OBS_STATE), observation.get(OBS_ENV_STATE)
        if isinstance(state, torch.Tensor) and isinstance(environment, torch.Tensor):
            observation[OBS_STATE] = torch.cat([state, environment.to(state.dtype)], dim=-1)
        return observation

    def get_config(self) -> dict[str, Any]:
        return {}

    def transform_features(
        self, features: dict[PipelineFeatureType, dict[str, PolicyFeature]]
    ) -> dict[PipelineFeatureType, dict[str, PolicyFeature]]:
        observation = dict(features.get(PipelineFeatureType.OBSERVATION, {}))
        state, environment = observation.get(OBS_STATE), observation.get(OBS_ENV_STATE)
        if state is not None and environment is not None:
            observation[OBS_STATE] = PolicyFeature(
                FeatureType.STATE, (state.shape[-1] + environment.shape[-1],)
            )
        return {**features, PipelineFeatureType.OBSERVATION: observation}


def needs_environment_state_step(policy_type: str, input_features: dict[str, PolicyFeature]) -> bool:
    return policy_type in STATE_ONLY_POLICIES and OBS_ENV_STATE in input_features


def add_environment_state_step(preprocessor: Any, policy_type: str, input_features: dict[str, Any]) -> None:
    """Append the step to a freshly built preprocessor of a state-only policy trained with object state."""
    if needs_environment_state_step(policy_type, input_features) and not any(
        isinstance(step, AppendEnvironmentStateStep) for step in preprocessor.steps
    ):
        preprocessor.steps = [*preprocessor.steps, AppendEnvironmentStateStep()]
