"""A Pi0-style flow-matching policy in Flax NNX, following openpi's conventions.

Tokens: each camera image is cut into patches (shared ViT, a learned camera embedding tells the views
apart) and the privileged environment state (block pose, bowl position), when the config takes it, is
projected to ``environment_state_tokens`` tokens → the *prefix*; a state-based config has no image tokens
at all. A state token and ``action_horizon`` noisy-action tokens mixed with the flow time
→ the *suffix*. Every joint layer holds two experts (separate weights for prefix and suffix tokens) that
attend together under a block mask: the prefix sees only itself, the state token sees the prefix and
itself, the action tokens see everything. Sampling runs the prefix once, keeps its keys/values per layer
and integrates the velocity field with Euler steps from t=1 (noise) to t=0 (actions).

Flow matching as openpi does it: t ~ Beta(1.5, 1) scaled to [0.001, 1], x_t = t·noise + (1−t)·actions,
target velocity u = noise − actions, loss = mean squared error over the action dims.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from backends.jax_openpi.config import ModelConfig


class Observation(NamedTuple):
    """Model inputs after the data transforms (normalised, padded, resized): ``images`` uint8
    (B, num_cameras, H, W, 3) or None without cameras, ``state`` float32 (B, action_dim), and
    ``environment_state`` float32 (B, environment_state_dim) or None when the config does not take it."""

    images: jax.Array | None
    state: jax.Array
    environment_state: jax.Array | None = None


def sincos_time_embedding(time: jax.Array, dim: int, min_period: float = 4e-3, max_period: float = 4.0):
    """Sine-cosine features of a scalar per example; periods span [min_period, max_period] so that the
    embedding resolves the whole [0, 1] flow-time range."""
    fraction = jnp.linspace(0.0, 1.0, dim // 2)
    period = min_period * (max_period / min_period) ** fraction
    angle = time[:, None] * (2 * jnp.pi / period)[None, :]
    return jnp.concatenate([jnp.sin(angle), jnp.cos(angle)], axis=-1)


def flow_time(rng: jax.Array, batch: int) -> jax.Array:
    """Flow times t ~ Beta(1.5, 1) scaled to [0.001, 1] (openpi's). Drawn by inverting the CDF t**1.5, which
    is exact for Beta(a, 1): jax.random.beta's rejection-sampling while loops made the train step several
    times slower to compile and to run on a CPU."""
    return jax.random.uniform(rng, (batch,)) ** (1.0 / 1.5) * 0.999 + 0.001


def block_causal_mask(block_starts: jax.Array) -> jax.Array:
    """(N, N) boolean: query i may attend to key j when j's block does not come after i's block.
    ``block_starts[k]`` is True where a new block begins (openpi's ``ar_mask`` convention)."""
    block = jnp.cumsum(block_starts.astype(jnp.int32))
    return block[None, :] <= block[:, None]


class Expert(nnx.Module):
    """One expert's weights within a layer: pre-norms, q/k/v/o projections and a gated MLP."""

    def __init__(self, width: int, num_heads: int, head_dim: int, mlp_ratio: int, *, rngs: nnx.Rngs):
        inner = num_heads * head_dim
        self.attention_norm = nnx.RMSNorm(width, rngs=rngs)
        self.query = nnx.Linear(width, inner, use_bias=False, rngs=rngs)
        self.key = nnx.Linear(width, inner, use_bias=False, rngs=rngs)
        self.value = nnx.Linear(width, inner, use_bias=False, rngs=rngs)
        self.out = nnx.Linear(inner, width, use_bias=False, rngs=rngs)
        self.mlp_norm = nnx.RMSNorm(width, rngs=rngs)
        self.gate = nnx.Linear(width, width * mlp_ratio, use_bias=False, rngs=rngs)
        self.up = nnx.Linear(width, width * mlp_ratio, use_bias=False, rngs=rngs)
        self.down = nnx.Linear(width * mlp_ratio, width, use_bias=False, rngs=rngs)
        self.num_heads, self.head_dim = num_heads, head_dim

    def project(self, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        normed = self.attention_norm(x)
        shape = (*x.shape[:-1], self.num_heads, self.head_dim)
        return (
            self.query(normed).reshape(shape),
            self.key(normed).reshape(shape),
            self.value(normed).reshape(shape),
        )

    def finish(self, x: jax.Array, attended: jax.Array) -> jax.Array:
        x = x + self.out(attended.reshape(*attended.shape[:-2], -1))
        normed = self.mlp_norm(x)
        return x + self.down(nnx.gelu(self.gate(normed)) * self.up(normed))


class KeyValues(NamedTuple):
    keys: jax.Array
    values: jax.Array


class JointLayer(nnx.Module):
    """Experts that attend together: each token group is projected by its own expert, attention runs
    over the concatenation (plus cached keys/values of groups not given), outputs go back per expert."""

    def __init__(self, widths: tuple[int, ...], config: ModelConfig, *, rngs: nnx.Rngs):
        self.experts = nnx.List(
            [Expert(w, config.num_heads, config.head_dim, config.mlp_ratio, rngs=rngs) for w in widths]
        )

    def __call__(
        self, groups: list[jax.Array | None], mask: jax.Array, cache: KeyValues | None = None
    ) -> tuple[list[jax.Array | None], KeyValues]:
        queries, keys, values, lengths = [], [], [], []
        for group, expert in zip(groups, self.experts, strict=True):
            if group is None:
                continue
            q, k, v = expert.project(group)
            queries.append(q)
            keys.append(k)
            values.append(v)
            lengths.append(group.shape[1])
        present = KeyValues(jnp.concatenate(keys, axis=1), jnp.concatenate(values, axis=1))
        all_keys, all_values = present
        if cache is not None:
            all_keys = jnp.concatenate([cache.keys, all_keys], axis=1)
            all_values = jnp.concatenate([cache.values, all_values], axis=1)
        attended = jax.nn.dot_product_attention(
            jnp.concatenate(queries, axis=1), all_keys, all_values, mask=mask[None, None, :, :]
        )
        outputs: list[jax.Array | None] = []
        offset = 0
        for group, expert in zip(groups, self.experts, strict=True):
            if group is None:
                outputs.append(None)
                continue
            outputs.append(expert.finish(group, attended[:, offset : offset + group.shape[1]]))
            offset += group.shape[1]
        return outputs, present


class ConvStem(nnx.Module):
    """Pixels → patch tokens through stride-2 convolutions ("early convolutions help transformers see
    better", Xiao et al. 2021): each token summarises its patch from features, not raw colours."""

    def __init__(self, channels: tuple[int, ...], width: int, *, rngs: nnx.Rngs):
        ins = (3, *channels[:-1])
        self.convs = nnx.List(
            [
                nnx.Conv(a, b, kernel_size=(3, 3), strides=(2, 2), padding="SAME", rngs=rngs)
                for a, b in zip(ins, channels, strict=True)
            ]
        )
        self.norms = nnx.List([nnx.GroupNorm(b, num_groups=min(8, b), rngs=rngs) for b in channels])
        self.project = nnx.Conv(channels[-1], width, kernel_size=(1, 1), rngs=rngs)

    def __call__(self, pixels: jax.Array) -> jax.Array:
        x = pixels
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = nnx.gelu(norm(conv(x)))
        return self.project(x)


class Pi0Policy(nnx.Module):
    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        self.config = config
        width, expert_width = config.width, config.expert_width
        p = config.patch_size
        init = nnx.initializers.normal(0.02)
        if config.num_cameras:
            if config.conv_stem:
                self.patch_embed = ConvStem(config.conv_stem, width, rngs=rngs)
            else:
                self.patch_embed = nnx.Conv(
                    3, width, kernel_size=(p, p), strides=(p, p), padding="VALID", rngs=rngs
                )
            self.patch_position = nnx.Param(init(rngs.params(), (config.tokens_per_camera, width)))
            self.camera_embedding = nnx.Param(init(rngs.params(), (config.num_cameras, width)))
            self.vision_layers = nnx.List(
                [JointLayer((width,), config, rngs=rngs) for _ in range(config.vision_depth)]
            )
        if config.environment_state_dim:
            tokens = config.environment_state_tokens
            self.environment_state_proj = nnx.Linear(config.environment_state_dim, tokens * width, rngs=rngs)
            self.environment_state_position = nnx.Param(init(rngs.params(), (tokens, width)))
        self.layers = nnx.List(
            [JointLayer((width, expert_width), config, rngs=rngs) for _ in range(config.depth)]
        )
        self.state_proj = nnx.Linear(config.action_dim, expert_width, rngs=rngs)
        self.action_in_proj = nnx.Linear(config.action_dim, expert_width, rngs=rngs)
        self.action_time_mlp_in = nnx.Linear(2 * expert_width, expert_width, rngs=rngs)
        self.action_time_mlp_out = nnx.Linear(expert_width, expert_width, rngs=rngs)
        # Pi0 gets token order from rotary positions; learned positions do the same job here.
        self.suffix_position = nnx.Param(init(rngs.params(), (1 + config.action_horizon, expert_width)))
        self.final_norm = nnx.RMSNorm(expert_width, rngs=rngs)
        self.action_out_proj = nnx.Linear(expert_width, config.action_dim, rngs=rngs)

    # -- token embedding -------------------------------------------------------------------------
    def embed_prefix(self, observation: Observation) -> jax.Array:
        """Image tokens (through the ViT layers), then environment-state tokens: (B, prefix, width)."""
        parts = []
        if self.config.num_cameras:
            parts.append(self.embed_images(observation.images))
        if self.config.environment_state_dim:
            environment = self.environment_state_proj(observation.environment_state)
            environment = environment.reshape(environment.shape[0], -1, self.config.width)
            parts.append(environment + self.environment_state_position[None])
        return jnp.concatenate(parts, axis=1)

    def embed_images(self, images: jax.Array) -> jax.Array:
        """uint8 (B, C, H, W, 3) → image tokens (B, C·patches, width), through the ViT layers."""
        batch, cameras = images.shape[:2]
        pixels = images.astype(jnp.float32) / 127.5 - 1.0  # openpi feeds images in [-1, 1]
        patches = self.patch_embed(pixels.reshape(batch * cameras, *pixels.shape[2:]))
        patches = patches.reshape(batch, cameras, -1, patches.shape[-1])
        tokens = patches + self.patch_position[None, None] + self.camera_embedding[None, :, None]
        tokens = tokens.reshape(batch, -1, tokens.shape[-1])
        full = jnp.ones((tokens.shape[1], tokens.shape[1]), dtype=bool)
        for layer in self.vision_layers:
            (tokens,), _ = layer([tokens], full)
        return tokens

    def embed_suffix(self, state: jax.Array, noisy_actions: jax.Array, time: jax.Array) -> jax.Array:
        state_token = self.state_proj(state)[:, None, :]
        action_tokens = self.action_in_proj(noisy_actions)
        time_tokens = jnp.broadcast_to(
            sincos_time_embedding(time, action_tokens.shape[-1])[:, None, :], action_tokens.shape
        )
        mixed = self.action_time_mlp_in(jnp.concatenate([action_tokens, time_tokens], axis=-1))
        mixed = self.action_time_mlp_out(nnx.swish(mixed))
        return jnp.concatenate([state_token, mixed], axis=1) + self.suffix_position[None]

    def attention_mask(self, prefix_length: int) -> jax.Array:
        horizon = self.config.action_horizon
        block_starts = jnp.concatenate(
            [
                jnp.zeros(prefix_length, dtype=bool),  # prefix tokens: one bidirectional block
                jnp.ones(2, dtype=bool),  # the state token, then the first action token start blocks
                jnp.zeros(horizon - 1, dtype=bool),  # the action tokens attend to each other
            ]
        )
        return block_causal_mask(block_starts)

    def velocity(self, suffix_out: jax.Array) -> jax.Array:
        return self.action_out_proj(self.final_norm(suffix_out[:, -self.config.action_horizon :]))

    # -- training --------------------------------------------------------------------------------
    def compute_loss(self, rng: jax.Array, observation: Observation, actions: jax.Array) -> jax.Array:
        """Per-example, per-step flow-matching loss (B, action_horizon)."""
        noise_rng, time_rng = jax.random.split(rng)
        batch = actions.shape[0]
        noise = jax.random.normal(noise_rng, actions.shape)
        time = flow_time(time_rng, batch)
        x_t = time[:, None, None] * noise + (1.0 - time[:, None, None]) * actions
        target = noise - actions

        prefix = self.embed_prefix(observation)
        suffix = self.embed_suffix(observation.state, x_t, time)
        mask = self.attention_mask(prefix.shape[1])
        groups: list[jax.Array | None] = [prefix, suffix]
        for layer in self.layers:
            groups, _ = layer(groups, mask)
        predicted = self.velocity(groups[1])
        return jnp.mean(jnp.square(predicted - target), axis=-1)

    # -- inference -------------------------------------------------------------------------------
    def sample_actions(
        self, rng: jax.Array, observation: Observation, num_steps: int = 10, noise: jax.Array | None = None
    ) -> jax.Array:
        """Euler integration of the learned velocity from t=1 (noise) to t=0: (B, horizon, action_dim)."""
        batch = observation.state.shape[0]
        shape = (batch, self.config.action_horizon, self.config.action_dim)
        if noise is None:
            noise = jax.random.normal(rng, shape)
        prefix = self.embed_prefix(observation)
        prefix_length = prefix.shape[1]
        mask = self.attention_mask(prefix_length)

        caches: list[KeyValues] = []
        groups: list[jax.Array | None] = [prefix, None]
        for layer in self.layers:
            groups, present = layer(groups, mask[:prefix_length, :prefix_length])
            caches.append(present)

        suffix_mask = mask[prefix_length:, :]
        dt = -1.0 / num_steps

        def euler_step(step: int, x_t: jax.Array) -> jax.Array:
            time = jnp.full((batch,), 1.0 + step * dt)
            suffix: jax.Array | None = self.embed_suffix(observation.state, x_t, time)
            for layer, cache in zip(self.layers, caches, strict=True):
                (_, suffix), _ = layer([None, suffix], suffix_mask, cache)
            return x_t + dt * self.velocity(suffix)

        return jax.lax.fori_loop(0, num_steps, euler_step, noise)
