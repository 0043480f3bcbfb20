"""Backbones come from local files only: a ResNet weight file for ACT, clear refusals otherwise."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torchvision

from backends.torch_lerobot.backbones import BackboneError, configure_backbone
from backends.torch_lerobot.presets import make_policy_config


def test_resnet_weights_load_from_a_local_file_without_the_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "untouched"))
    local = torchvision.models.resnet18(weights=None).state_dict()
    local = {
        key: torch.full_like(value, 0.5) if value.is_floating_point() else value
        for key, value in local.items()
    }
    weight_file = tmp_path / "my_resnet18.pth"
    torch.save(local, weight_file)

    overrides, backbone_dir = configure_backbone("act", backbone_dir=weight_file)
    # ImageNet weights are for torchvision's resnet18, whatever backbone the preset trains from scratch.
    assert overrides == {
        "pretrained_backbone_weights": "ResNet18_Weights.IMAGENET1K_V1",
        "vision_backbone": "resnet18",
    }
    assert backbone_dir is None
    assert os.environ["TORCH_HOME"] != str(tmp_path / "untouched")
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.act.modeling_act import ACTPolicy

    config = make_policy_config("act", "cpu", device="cpu", overrides=overrides)
    config.input_features = {"observation.images.top": PolicyFeature(FeatureType.VISUAL, (3, 32, 32))}
    config.output_features = {"action": PolicyFeature(FeatureType.ACTION, (6,))}
    policy = ACTPolicy(config)
    conv = dict(policy.model.backbone.named_parameters())["conv1.weight"]
    assert torch.all(conv == 0.5), "the ResNet did not start from the local weight file"


def test_missing_weight_file_and_missing_backbone_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(BackboneError, match="no resnet18 weight file"):
        configure_backbone("act", backbone_dir=tmp_path)
    with pytest.raises(BackboneError, match="--tiny-backbone"):
        configure_backbone("smolvla")
    with pytest.raises(BackboneError, match="is for smolvla/pi0"):
        configure_backbone("diffusion", tiny_backbone_dir=tmp_path)


def test_presets_never_ask_for_downloaded_weights() -> None:
    for policy in ("act", "diffusion"):
        for preset in ("cpu", "gpu"):
            config = make_policy_config(policy, preset, device="cpu")  # type: ignore[arg-type]
            assert config.pretrained_backbone_weights is None and config.push_to_hub is False
