import torch
import torchvision
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.policies.act.configuration_act import ACTConfig
from lerobot.policies.act.modeling_act import ACTPolicy
from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig
from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy

from backends.torch_lerobot import scratch_backbones


def features(height: int, width: int) -> dict[str, PolicyFeature]:
    return {
        "observation.state": PolicyFeature(FeatureType.STATE, (6,)),
        "observation.images.overhead": PolicyFeature(FeatureType.VISUAL, (3, height, width)),
    }


def test_act_and_diffusion_build_and_learn_with_each_width() -> None:
    action = {"action": PolicyFeature(FeatureType.ACTION, (6,))}
    for width in scratch_backbones.WIDTHS:
        name = scratch_backbones.backbone_name(width)
        assert hasattr(torchvision.models, name)
        act = ACTPolicy(
            ACTConfig(input_features=features(48, 64), output_features=action, device="cpu",
                      pretrained_backbone_weights=None, vision_backbone=name, chunk_size=5, n_action_steps=5,
                      dim_model=32, n_heads=2, dim_feedforward=64, n_encoder_layers=1, use_vae=False)
        )  # fmt: skip
        norms = [module for module in act.model.backbone.modules() if isinstance(module, torch.nn.GroupNorm)]
        assert norms and all(norm.weight.requires_grad for norm in norms)  # trained, unlike a frozen BN
        assert act.model.encoder_img_feat_input_proj.in_channels == 8 * width
        batch = {
            "observation.state": torch.randn(2, 6),
            "observation.images.overhead": torch.rand(2, 3, 48, 64),
            "action": torch.randn(2, 5, 6),
            "action_is_pad": torch.zeros(2, 5, dtype=torch.bool),
        }
        loss, _ = act.forward(batch)
        loss.backward()
        assert next(iter(act.model.backbone.parameters())).grad is not None
    diffusion = DiffusionPolicy(
        DiffusionConfig(input_features=features(48, 64), output_features=action, device="cpu",
                        pretrained_backbone_weights=None, vision_backbone="resnet18_gn_w16", crop_shape=None,
                        down_dims=(16, 32), n_obs_steps=2, horizon=8, n_action_steps=4)
    )  # fmt: skip
    assert diffusion is not None


def test_pretrained_weights_are_refused_in_one_line() -> None:
    try:
        torchvision.models.resnet18_gn_w32(weights="ResNet18_Weights.IMAGENET1K_V1")
    except ValueError as error:
        assert "no pretrained weights" in str(error)
    else:
        raise AssertionError("pretrained weights were accepted")
