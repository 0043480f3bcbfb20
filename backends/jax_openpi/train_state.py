"""The training state and one optimiser step, free of any dataset code.

AdamW (b1 0.9, b2 0.95) after global-norm clipping, with openpi's warmup + cosine schedule; optionally an
EMA of the weights, which is what a checkpoint's ``params`` then holds (as openpi saves them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from backends.jax_openpi import checkpoints
from backends.jax_openpi.config import TrainConfig
from backends.jax_openpi.model import Observation, Pi0Policy

Params = dict[str, Any]
TrainStep = Callable[..., tuple[Params, Any, Params | None, dict[str, jax.Array]]]


def learning_rate_schedule(config: TrainConfig) -> optax.Schedule:
    return optax.warmup_cosine_decay_schedule(
        init_value=config.peak_lr / (config.warmup_steps + 1),
        peak_value=config.peak_lr,
        warmup_steps=config.warmup_steps,
        decay_steps=max(config.decay_steps, config.warmup_steps + 1),
        end_value=config.end_lr,
    )


def optimizer(config: TrainConfig) -> optax.GradientTransformation:
    return optax.chain(
        optax.clip_by_global_norm(config.clip_gradient_norm),
        optax.adamw(
            learning_rate_schedule(config), b1=0.9, b2=0.95, eps=1e-8, weight_decay=config.weight_decay
        ),
    )


def init_model(config: TrainConfig, seed: int) -> tuple[nnx.GraphDef, Params]:
    graphdef, state = nnx.split(Pi0Policy(config.model, rngs=nnx.Rngs(seed)))
    return graphdef, nnx.to_pure_dict(state)


def make_train_step(graphdef: nnx.GraphDef, config: TrainConfig) -> TrainStep:
    """One jitted AdamW step (and EMA update): (params, opt_state, ema, rng, obs, actions) → new state."""
    tx = optimizer(config)
    decay = config.ema_decay

    def train_step(params, opt_state, ema, rng, observation: Observation, actions):
        def loss_fn(p):
            return jnp.mean(nnx.merge(graphdef, p).compute_loss(rng, observation, actions))

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        if decay is not None:
            ema = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, ema, params)
        return params, opt_state, ema, {"loss": loss, "grad_norm": optax.tree.norm(grads)}

    return jax.jit(train_step, donate_argnums=(0, 1, 2))


@dataclass
class TrainState:
    params: Params
    opt_state: Any
    ema: Params | None
    step: int = 0

    @property
    def inference_params(self) -> Params:
        return self.ema if self.ema is not None else self.params

    def orbax_items(self) -> tuple[Params, dict[str, Any]]:
        train_state: dict[str, Any] = {"opt_state": self.opt_state}
        if self.ema is not None:
            train_state["raw_params"] = self.params
        return self.inference_params, train_state


def new_train_state(config: TrainConfig, params: Params) -> TrainState:
    ema = jax.tree.map(jnp.array, params) if config.ema_decay is not None else None
    return TrainState(params, optimizer(config).init(params), ema)


def restore_train_state(directory: Path, config: TrainConfig, template: TrainState) -> TrainState:
    inference, train_state = template.orbax_items()
    restored = checkpoints.restore_items(
        directory, {checkpoints.PARAMS_ITEM: inference, checkpoints.TRAIN_STATE_ITEM: train_state}
    )
    saved = restored[checkpoints.TRAIN_STATE_ITEM]
    if config.ema_decay is not None:
        return TrainState(
            saved["raw_params"], saved["opt_state"], restored[checkpoints.PARAMS_ITEM], int(directory.name)
        )
    return TrainState(restored[checkpoints.PARAMS_ITEM], saved["opt_state"], None, int(directory.name))
