"""The model's side of the transforms: the input pipeline a config implies, and a transformed sample as
the arrays the model takes. Shared by training and the adapter (which must not need the dataset reader)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from backends.jax_openpi import transforms as T
from backends.jax_openpi.config import TrainConfig
from backends.jax_openpi.model import Observation
from backends.jax_openpi.norm_stats import NormStats


def model_pipeline(config: TrainConfig, norm_stats: Mapping[str, NormStats], resize: bool) -> T.Pipeline:
    return T.so101_input_pipeline(
        base_camera=config.base_camera,
        wrist_camera=config.wrist_camera,
        norm_stats=norm_stats,
        use_quantiles=config.use_quantile_norm,
        model_action_dim=config.model.action_dim,
        image_size=config.model.image_size if resize and config.cameras else None,
        env_dim=config.env_action_dim,
        environment_state=config.uses_environment_state,
    )


def model_observation(model_sample: Mapping[str, object]) -> Observation:
    """A transformed (batched) sample → the model's Observation (uint8 images stacked per camera, None
    without cameras; the environment state when the sample has it)."""
    cameras = [np.asarray(model_sample[key]) for key in (T.BASE_IMAGE, T.WRIST_IMAGE) if key in model_sample]
    environment = model_sample.get(T.ENVIRONMENT_STATE)
    return Observation(
        images=np.stack(cameras, axis=-4) if cameras else None,
        state=np.asarray(model_sample[T.STATE], dtype=np.float32),
        environment_state=None if environment is None else np.asarray(environment, dtype=np.float32),
    )


def model_actions(model_sample: Mapping[str, object]) -> np.ndarray:
    return np.asarray(model_sample[T.ACTIONS], dtype=np.float32)
