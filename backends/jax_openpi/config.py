"""Named configurations: model size, image size and cameras, normalisation, optimiser, checkpointing.

``so101_test`` is one layer and tiny (unit tests), ``so101_cpu`` learns the block→bowl task on a laptop
CPU in minutes, ``so101_gpu`` is the size to train on an accelerator. ``config.json`` in every checkpoint
is ``TrainConfig.to_dict()``, so a checkpoint rebuilds exactly the model and transforms it was trained with.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from libs.errors import LabError


class UnknownConfigError(LabError, KeyError):
    """A config name that is not in CONFIGS (a KeyError too: a config looked up by name)."""

    def __str__(self) -> str:
        return str(self.args[0])


class ConfigError(LabError, ValueError):
    """Settings that cannot make a model or a run; the message names the setting and the fix."""


@dataclass(frozen=True)
class ModelConfig:
    """A Pi0-style model: a ViT over each camera (shared weights), then a joint transformer in which the
    image tokens (prefix expert) and the state + noisy action tokens (action expert) attend together."""

    image_size: tuple[int, int] = (224, 224)
    patch_size: int = 16
    #: Channels of stride-2 3x3 convolutions (GroupNorm, GELU) that turn pixels into patch tokens in place of
    #: openpi's one linear patch projection; their strides multiply to ``patch_size``. () = the linear one.
    #: A small object (the block spans ~2 pixels at 64x64) must be found inside a patch: a linear projection
    #: learned from scratch on a few hundred demos sees it as a faint colour shift of one token.
    conv_stem: tuple[int, ...] = ()
    num_cameras: int = 2  # 0: no image tokens (a state-based policy)
    #: Length of ``observation.environment_state`` (privileged object state) fed as prefix tokens; 0: none.
    environment_state_dim: int = 0
    #: How many prefix tokens the environment state is projected to.
    environment_state_tokens: int = 1
    width: int = 256  # prefix (vision) expert width
    expert_width: int = 128  # action expert width
    vision_depth: int = 2  # ViT layers over image tokens before the joint layers
    depth: int = 4  # joint layers (prefix expert + action expert share attention)
    num_heads: int = 4
    head_dim: int = 32
    mlp_ratio: int = 4
    action_horizon: int = 50
    action_dim: int = 32

    def __post_init__(self) -> None:
        stem_patch = 2 ** len(self.conv_stem)
        if self.conv_stem and stem_patch != self.patch_size:
            raise ConfigError(
                f"a conv stem of {len(self.conv_stem)} stride-2 layers makes {stem_patch}-pixel patches, "
                f"but patch_size is {self.patch_size}: make the two agree"
            )
        if self.num_cameras == 0 and self.environment_state_dim == 0:
            raise ConfigError(
                "a model needs a prefix: cameras (num_cameras > 0) or environment_state_dim > 0"
            )

    @property
    def tokens_per_camera(self) -> int:
        return (self.image_size[0] // self.patch_size) * (self.image_size[1] // self.patch_size)


@dataclass(frozen=True)
class TrainConfig:
    name: str
    model: ModelConfig
    base_camera: str | None = "overhead"  # None: the model sees no such camera
    wrist_camera: str | None = "wrist"
    env_action_dim: int = 6
    use_quantile_norm: bool = False
    batch_size: int = 32
    peak_lr: float = 2.5e-4
    warmup_steps: int = 100
    decay_steps: int = 10_000
    end_lr: float = 2.5e-5
    weight_decay: float = 1e-10
    clip_gradient_norm: float = 1.0
    ema_decay: float | None = None
    num_sample_steps: int = 10
    #: Scale of the noise the Euler integration starts from at inference: 1 samples the learned action
    #: distribution (openpi), 0 integrates from its centre (one deterministic chunk per observation).
    sample_noise_scale: float = 1.0
    n_action_steps: int = 10  # steps of a chunk executed before re-planning
    save_interval: int = 1000
    keep_last: int = 3  # checkpoints kept: the last `keep_last` plus every `keep_period`-th step
    keep_period: int | None = 5000
    log_interval: int = 10
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.cameras) != self.model.num_cameras:
            raise ConfigError(
                f"config {self.name!r} names cameras {self.cameras} but its model takes "
                f"{self.model.num_cameras}: set base_camera/wrist_camera (None for none) to match"
            )

    @property
    def cameras(self) -> tuple[str, ...]:
        """The camera names the model sees, base camera first."""
        return tuple(name for name in (self.base_camera, self.wrist_camera) if name)

    @property
    def uses_environment_state(self) -> bool:
        return self.model.environment_state_dim > 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        model_fields = dict(data["model"])
        model_fields["image_size"] = tuple(model_fields["image_size"])
        model_fields["conv_stem"] = tuple(model_fields.get("conv_stem", ()))
        known = {f.name for f in dataclasses.fields(cls)}
        fields = {key: value for key, value in data.items() if key in known}
        return cls(**{**fields, "model": ModelConfig(**model_fields)})

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


#: The unit-test configs' transformer: one joint layer, no ViT layers, width 32.
_TEST_MODEL: dict[str, Any] = {
    "width": 32,
    "expert_width": 32,
    "vision_depth": 0,
    "depth": 1,
    "num_heads": 2,
    "head_dim": 16,
    "mlp_ratio": 2,
}
#: The unit-test configs' optimiser and checkpointing: a few steps, a save every 5, every step logged.
_TEST_RUN: dict[str, Any] = {
    "batch_size": 4,
    "peak_lr": 1e-3,
    "warmup_steps": 2,
    "decay_steps": 1000,
    "end_lr": 1e-4,
    "save_interval": 5,
    "keep_last": 2,
    "keep_period": None,
    "log_interval": 1,
}

CONFIGS: dict[str, TrainConfig] = {
    "so101_test": TrainConfig(
        name="so101_test",
        model=ModelConfig(
            image_size=(32, 32),
            patch_size=8,
            **_TEST_MODEL,
        ),
        **_TEST_RUN,
    ),
    # Images + joint state. Measured on 200 demos (96x128, 2.0° executed-action noise), one core, 8,000 steps
    # (33 min), seeds 0-49: 18/50 (README "Vision JAX policy"). Before (linear patch projection, horizon 50
    # sampled from noise, EMA 0.99): 0% in the quickstart at every checkpoint.
    "so101_cpu": TrainConfig(
        name="so101_cpu",
        model=ModelConfig(
            image_size=(64, 64),
            patch_size=8,
            conv_stem=(16, 32, 64),
            width=96,
            expert_width=96,
            vision_depth=1,
            depth=2,
            num_heads=4,
            head_dim=24,
            mlp_ratio=2,
            action_horizon=30,
        ),
        batch_size=16,
        peak_lr=5e-4,
        warmup_steps=100,
        decay_steps=8000,
        end_lr=5e-5,
        ema_decay=0.995,
        sample_noise_scale=0.0,
        n_action_steps=10,
        save_interval=1000,
        keep_last=3,
        keep_period=2000,
    ),
    "so101_gpu": TrainConfig(
        name="so101_gpu",
        model=ModelConfig(
            image_size=(224, 224),
            patch_size=14,
            width=512,
            expert_width=256,
            vision_depth=6,
            depth=8,
            num_heads=8,
            head_dim=64,
            mlp_ratio=4,
        ),
        batch_size=64,
        peak_lr=2.5e-4,
        warmup_steps=1000,
        decay_steps=30_000,
        end_lr=2.5e-5,
        ema_decay=0.99,
        save_interval=2000,
        keep_last=3,
        keep_period=10_000,
        log_interval=50,
    ),
    # State-based: no cameras; the environment state (block pose, bowl xy) is the prefix. Small enough to
    # learn the task in minutes on 2 CPU cores (benchmarks/jax_policy.py measures it).
    "so101_state": TrainConfig(
        name="so101_state",
        model=ModelConfig(
            num_cameras=0,
            environment_state_dim=9,
            environment_state_tokens=2,
            width=128,
            expert_width=128,
            vision_depth=0,
            depth=2,
            num_heads=4,
            head_dim=32,
            mlp_ratio=2,
            action_horizon=20,
        ),
        base_camera=None,
        wrist_camera=None,
        batch_size=32,
        peak_lr=1e-3,
        warmup_steps=100,
        decay_steps=4000,
        end_lr=5e-5,
        ema_decay=0.995,
        # measured: 30/56 seeds against 24/56 when sampling (same checkpoint, same seeds 0-55)
        sample_noise_scale=0.0,
        # 15 of the 20-step chunk: on one 8,000-step checkpoint, 100 seeds: 5 → 20/100 (half time out
        # re-planning into its own jitter), 10 → 89/100, 15 → 93/100.
        n_action_steps=15,
        save_interval=1000,
        keep_last=3,
        keep_period=1000,
        log_interval=50,
    ),
    "so101_state_test": TrainConfig(
        name="so101_state_test",
        model=ModelConfig(
            num_cameras=0,
            environment_state_dim=9,
            **_TEST_MODEL,
            action_horizon=10,
        ),
        base_camera=None,
        wrist_camera=None,
        n_action_steps=5,
        **_TEST_RUN,
    ),
}


def get_config(name: str) -> TrainConfig:
    if name not in CONFIGS:
        raise UnknownConfigError(f"unknown config {name!r}: use one of {', '.join(CONFIGS)}")
    return CONFIGS[name]
