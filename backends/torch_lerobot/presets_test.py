"""Presets: every size normalises the privileged object state; the state preset sizes each policy for it."""

from __future__ import annotations

import pytest
from lerobot.configs.types import NormalizationMode

from backends.torch_lerobot.presets import make_policy_config


@pytest.mark.parametrize("preset", ["cpu", "state", "gpu"])
def test_environment_state_is_normalised_like_the_joint_state(preset: str) -> None:
    for policy in ("act", "diffusion", "smolvla", "pi0"):
        mapping = make_policy_config(policy, preset, device="cpu").normalization_mapping  # type: ignore[arg-type]
        assert mapping["ENV"] == mapping["STATE"] != NormalizationMode.IDENTITY


def test_state_preset_sizes_every_policy_for_the_object_state() -> None:
    config = make_policy_config("act", "state", device="cpu")
    assert config.use_vae is False and config.n_action_steps <= config.chunk_size
    for vla in ("smolvla", "pi0"):  # over a tiny random backbone nothing frozen is worth keeping
        config = make_policy_config(vla, "state", device="cpu")  # type: ignore[arg-type]
        assert config.train_expert_only is False and config.freeze_vision_encoder is False


def test_cpu_act_is_the_measured_vision_recipe() -> None:
    """GroupNorm ResNet-18 (width 16) from random weights, no VAE, 10 of 30 actions executed per chunk."""
    config = make_policy_config("act", "cpu", device="cpu")
    assert config.vision_backbone == "resnet18_gn_w16" and config.pretrained_backbone_weights is None
    assert config.use_vae is False and (config.chunk_size, config.n_action_steps) == (30, 10)
