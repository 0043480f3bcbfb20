"""Presets: every size normalises the privileged object state; the state preset is for state policies."""

from __future__ import annotations

import pytest
from lerobot.configs.types import NormalizationMode

from backends.torch_lerobot.presets import make_policy_config


@pytest.mark.parametrize("preset", ["cpu", "state", "gpu"])
def test_environment_state_is_normalised_like_the_joint_state(preset: str) -> None:
    for policy in ("act", "diffusion"):
        mapping = make_policy_config(policy, preset, device="cpu").normalization_mapping  # type: ignore[arg-type]
        assert mapping["ENV"] == mapping["STATE"] != NormalizationMode.IDENTITY


def test_state_preset_is_for_state_based_policies_only() -> None:
    config = make_policy_config("act", "state", device="cpu")
    assert config.use_vae is False and config.n_action_steps <= config.chunk_size
    with pytest.raises(ValueError, match="needs images"):
        make_policy_config("smolvla", "state", device="cpu")


def test_cpu_act_is_the_measured_vision_recipe() -> None:
    """GroupNorm ResNet-18 (width 16) from random weights, no VAE, 10 of 30 actions executed per chunk."""
    config = make_policy_config("act", "cpu", device="cpu")
    assert config.vision_backbone == "resnet18_gn_w16" and config.pretrained_backbone_weights is None
    assert config.use_vae is False and (config.chunk_size, config.n_action_steps) == (30, 10)
