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


class UnknownConfigError(KeyError):
    """A config name that is not in CONFIGS."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class ModelConfig:
    """A Pi0-style model: a ViT over each camera (shared weights), then a joint transformer in which the
    image tokens (prefix expert) and the state + noisy action tokens (action expert) attend together."""

    image_size: tuple[int, int] = (224, 224)
    patch_size: int = 16
    num_cameras: int = 2
    width: int = 256  # prefix (vision) expert width
    expert_width: int = 128  # action expert width
    vision_depth: int = 2  # ViT layers over image tokens before the joint layers
    depth: int = 4  # joint layers (prefix expert + action expert share attention)
    num_heads: int = 4
    head_dim: int = 32
    mlp_ratio: int = 4
    action_horizon: int = 50
    action_dim: int = 32

    @property
    def tokens_per_camera(self) -> int:
        return (self.image_size[0] // self.patch_size) * (self.image_size[1] // self.patch_size)


@dataclass(frozen=True)
class TrainConfig:
    name: str
    model: ModelConfig
    base_camera: str = "overhead"
    wrist_camera: str = "wrist"
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
    n_action_steps: int = 10  # steps of a chunk executed before re-planning
    save_interval: int = 1000
    keep_last: int = 3  # checkpoints kept: the last `keep_last` plus every `keep_period`-th step
    keep_period: int | None = 5000
    log_interval: int = 10
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        model_fields = dict(data["model"])
        model_fields["image_size"] = tuple(model_fields["image_size"])
        known = {f.name for f in dataclasses.fields(cls)}
        fields = {key: value for key, value in data.items() if key in known}
        return cls(**{**fields, "model": ModelConfig(**model_fields)})

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)


CONFIGS: dict[str, TrainConfig] = {
    "so101_test": TrainConfig(
        name="so101_test",
        model=ModelConfig(
            image_size=(32, 32),
            patch_size=8,
            width=32,
            expert_width=32,
            vision_depth=0,
            depth=1,
            num_heads=2,
            head_dim=16,
            mlp_ratio=2,
        ),
        batch_size=4,
        peak_lr=1e-3,
        warmup_steps=2,
        decay_steps=1000,
        end_lr=1e-4,
        save_interval=5,
        keep_last=2,
        keep_period=None,
        log_interval=1,
    ),
    "so101_cpu": TrainConfig(
        name="so101_cpu",
        model=ModelConfig(
            image_size=(64, 64),
            patch_size=8,
            width=96,
            expert_width=96,
            vision_depth=1,
            depth=2,
            num_heads=4,
            head_dim=24,
            mlp_ratio=2,
        ),
        batch_size=16,
        peak_lr=5e-4,
        warmup_steps=100,
        decay_steps=5000,
        end_lr=5e-5,
        ema_decay=0.99,
        save_interval=500,
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
}


def get_config(name: str) -> TrainConfig:
    if name not in CONFIGS:
        raise UnknownConfigError(f"unknown config {name!r}: use one of {', '.join(CONFIGS)}")
    return CONFIGS[name]
