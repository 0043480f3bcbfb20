"""Policy configurations per policy type and machine size.

``cpu`` presets are small enough to train a few hundred steps on a 2-core laptop-class CPU (ACT with a
narrow transformer, Diffusion with a small U-Net sampled by DDIM in a few steps); ``state`` presets are for
datasets with the privileged object state (joint state + ``observation.environment_state``; ACT and
Diffusion need no images, SmolVLA and Pi0 take theirs beside it), sized to learn the task in minutes on 2
CPU cores; ``gpu`` presets are LeRobot's own defaults. All are plain LeRobot config objects:
nothing here changes how LeRobot trains.
"""

from __future__ import annotations

from typing import Any, Literal

from lerobot.configs.policies import PreTrainedConfig
from lerobot.policies.act.configuration_act import ACTConfig
from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig
from lerobot.policies.pi0.configuration_pi0 import PI0Config
from lerobot.policies.smolvla.configuration_smolvla import SmolVLAConfig

PolicyType = Literal["act", "diffusion", "smolvla", "pi0"]
Preset = Literal["cpu", "state", "gpu"]
POLICY_TYPES: tuple[str, ...] = ("act", "diffusion", "smolvla", "pi0")
PRESETS: tuple[str, ...] = ("cpu", "state", "gpu")

# The ACT transformer both CPU presets use. Each step's cost is the decoder's 30 action queries per sample
# (~17 MFLOP forward at this width): about 10 steps/s of batch 32 on one core without images. The scripted
# expert is one deterministic behaviour per state: the VAE's style latent has nothing to capture, and its
# encoder over the 30-step action chunk was half of each state step's compute.
_ACT_NARROW: dict[str, Any] = {
    "dim_model": 128,
    "n_heads": 4,
    "dim_feedforward": 512,
    "n_encoder_layers": 2,
    "n_decoder_layers": 1,
    "use_vae": False,
}

# Overrides on top of LeRobot's defaults. The control loop runs at 30 Hz, so a chunk of 30 covers one second.
_CPU_OVERRIDES: dict[str, dict[str, Any]] = {
    # Vision ACT from random weights, measured on 200 demos (2.0° recovery noise), batch 16, 100 seeds
    # (README "Vision ACT"), one core: LeRobot's ResNet-18 with frozen batch norm (the identity without
    # ImageNet weights) 34/100 after 1,600 steps (39 min); GroupNorm ResNet-18 at width 32 70/100 after
    # 6,000 steps (49 min), at width 16 81/100 after 15,000 steps (60 min: 2.2× the steps of width 32).
    "act": {
        "chunk_size": 30,
        # Executed steps per chunk, one checkpoint (width 32, 6,000 steps): 5 → 38/100 (24 timeouts: it
        # re-plans into its own jitter), 10 → 70, 20 → 44, 30 → 41; temporal ensembling (coeff 0.01, a
        # chunk every step) 73 at ~4.5× the evaluation time. Width 16, 15,000 steps: 10 → 81, 20 → 69.
        "n_action_steps": 10,
        **_ACT_NARROW,
        "vision_backbone": "resnet18_gn_w16",
        # Short runs need a larger step than LeRobot's 1e-5 (tuned for 100k-step runs).
        "optimizer_lr": 2e-4,
        "optimizer_lr_backbone": 2e-4,
    },
    "diffusion": {
        "n_obs_steps": 2,
        "horizon": 16,
        "n_action_steps": 8,
        "drop_n_last_frames": 7,  # horizon - n_action_steps - n_obs_steps + 1
        "down_dims": (64, 128, 256),
        "diffusion_step_embed_dim": 64,
        "spatial_softmax_num_keypoints": 16,
        "crop_shape": None,
        "use_group_norm": True,
        "noise_scheduler_type": "DDIM",
        "num_train_timesteps": 100,
        "num_inference_steps": 10,
        "scheduler_warmup_steps": 50,
    },
    "smolvla": {
        "chunk_size": 30,
        "n_action_steps": 30,
        "resize_imgs_with_padding": (64, 64),
        "num_steps": 4,
        "scheduler_warmup_steps": 20,
        "scheduler_decay_steps": 1000,
    },
    "pi0": {
        "chunk_size": 30,
        "n_action_steps": 30,
        "image_resolution": (56, 56),
        "num_inference_steps": 4,
        "scheduler_warmup_steps": 20,
        "scheduler_decay_steps": 1000,
    },
}

# State-based policies (no images): the inputs are two short vectors, so the model can be wider and deeper
# than the cpu preset's at a fraction of its step time.
_STATE_OVERRIDES: dict[str, dict[str, Any]] = {
    "act": {
        "chunk_size": 30,
        # Executed steps per chunk, measured on 100 seeds with one checkpoint (200 demos, 2,000 steps):
        # 1 → 1%, 5 → 26%, 10 → 70%, 15 → 75%, 20 → 82%, 25 → 63%, 30 → 54%; temporal ensembling (coeff
        # 0.01, a chunk every step) 84% at 2.5× the inference. Too few steps re-plan into the policy's own
        # jitter; too many run blind past the grasp.
        "n_action_steps": 20,
        **_ACT_NARROW,
        "optimizer_lr": 3e-4,
    },
    "diffusion": {
        "n_obs_steps": 2,
        "horizon": 16,
        "n_action_steps": 8,
        "drop_n_last_frames": 7,
        # Measured on 200 demos (2.0° noise), one core, 50 seeds: LeRobot's epsilon prediction, U-Net
        # (64, 128, 256), 5,000 steps of batch 32: 33/100 (44 close on air ~3 cm from the block); the same
        # net predicting the clean chunk ("sample"), 46/50; a narrower U-Net (32, 64, 128) at batch 64,
        # 8,000 steps: 49/50 (its steps cost ~40% of the wider net's per sample); this preset, 6,000 steps
        # of batch 64 (9m44s of one core): 97/100 (README "State-based Diffusion"). Predicting the sample
        # needs no exact noise estimate at each of DDIM's 10 coarse steps, so short runs converge.
        "prediction_type": "sample",
        "down_dims": (32, 64, 128),
        "diffusion_step_embed_dim": 64,
        "use_group_norm": True,
        "noise_scheduler_type": "DDIM",
        "num_train_timesteps": 100,
        "num_inference_steps": 10,
        "optimizer_lr": 3e-4,
        "scheduler_warmup_steps": 200,
    },
    # The VLAs with the object state (``observation.environment_state``, joined to their one state vector by
    # ``environment_state.py``) beside their cameras: over a tiny random backbone nothing pretrained is worth
    # keeping frozen, so every weight trains (LeRobot's SmolVLA defaults freeze the VLM and its vision tower,
    # which over random weights feed the action expert fixed random features).
    "smolvla": {
        "chunk_size": 30,
        "n_action_steps": 15,
        "num_steps": 10,
        "freeze_vision_encoder": False,
        "train_expert_only": False,
        "optimizer_lr": 3e-4,
    },
    "pi0": {
        "chunk_size": 30,
        "n_action_steps": 15,
        "num_inference_steps": 10,
        "freeze_vision_encoder": False,
        "train_expert_only": False,
        "optimizer_lr": 3e-4,
    },
}

_CONFIG_CLASSES: dict[str, type[PreTrainedConfig]] = {
    "act": ACTConfig,
    "diffusion": DiffusionConfig,
    "smolvla": SmolVLAConfig,
    "pi0": PI0Config,
}


def make_policy_config(
    policy: PolicyType,
    preset: Preset,
    *,
    device: str,
    overrides: dict[str, Any] | None = None,
) -> PreTrainedConfig:
    """A LeRobot policy config for ``policy`` at ``preset`` size, never touching the network.

    ResNet backbones start from random weights (``pretrained_backbone_weights=None``); the caller switches
    them on only when a local weight file is present (see ``backbones.py``), which needs LeRobot's
    ``resnet18`` (``--vision-backbone resnet18``: ImageNet weights come for its frozen batch norm).
    """
    if policy not in _CONFIG_CLASSES:
        raise ValueError(f"unknown policy {policy!r}: use one of {', '.join(POLICY_TYPES)}")
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}: use one of {', '.join(PRESETS)}")
    fields: dict[str, Any] = {"device": device, "push_to_hub": False}
    if policy in ("act", "diffusion"):
        fields["pretrained_backbone_weights"] = None
    # LeRobot's policies leave ``observation.environment_state`` (FeatureType.ENV) out of their normalisation
    # mappings, so it would enter raw: block coordinates that vary by a few centimetres around 0.2 m look
    # constant to the network, which then cannot aim (ACT trained that way picked the block in 6 of 100
    # episodes). Normalise it as each policy normalises the joint state.
    mapping = dict(_CONFIG_CLASSES[policy]().normalization_mapping)
    mapping.setdefault("ENV", mapping["STATE"])
    fields["normalization_mapping"] = mapping
    if preset == "cpu":
        fields.update(_CPU_OVERRIDES[policy])
    elif preset == "state":
        fields.update(_STATE_OVERRIDES[policy])
    fields.update(overrides or {})
    return _CONFIG_CLASSES[policy](**fields)
