import jax
import jax.numpy as jnp
import numpy as np
import pytest

from backends.jax_openpi.compilation_cache import enable_compilation_cache
from backends.jax_openpi.config import get_config
from backends.jax_openpi.model import Observation, block_causal_mask, flow_time
from backends.jax_openpi.train_state import init_model, make_train_step, new_train_state

CONFIG = get_config("so101_test")


@pytest.fixture(scope="module")
def fixed_batch() -> tuple[Observation, jax.Array]:
    rng = np.random.default_rng(0)
    model = CONFIG.model
    batch = CONFIG.batch_size
    images = rng.integers(0, 256, (batch, 2, *model.image_size, 3), dtype=np.uint8)
    state = np.zeros((batch, model.action_dim), np.float32)
    state[:, :6] = rng.normal(size=(batch, 6))
    actions = np.zeros((batch, model.action_horizon, model.action_dim), np.float32)
    actions[..., :6] = state[:, None, :6] + np.linspace(0, 1, model.action_horizon)[None, :, None]
    return Observation(jnp.asarray(images), jnp.asarray(state)), jnp.asarray(actions)


def test_block_mask_follows_openpi_prefix_state_action_blocks() -> None:
    # 2 image tokens, 1 state token, 2 action tokens
    mask = np.asarray(block_causal_mask(jnp.array([False, False, True, True, False])))
    assert mask[:2, :2].all() and not mask[:2, 2:].any()  # images see only images
    assert mask[2, :3].all() and not mask[2, 3:].any()  # state sees images + itself
    assert mask[3:].all()  # actions see everything


def test_a_few_train_steps_lower_the_loss_on_a_fixed_batch(fixed_batch) -> None:
    enable_compilation_cache()
    observation, actions = fixed_batch
    graphdef, params = init_model(CONFIG, seed=0)
    state = new_train_state(CONFIG, params)
    train_step = make_train_step(graphdef, CONFIG)
    rng = jax.random.key(1)  # same noise and times every step: the loss is comparable across steps
    losses = []
    for _ in range(12):
        state.params, state.opt_state, state.ema, info = train_step(
            state.params, state.opt_state, state.ema, rng, observation, actions
        )
        losses.append(float(info["loss"]))
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.7 * losses[0], losses


def test_sample_actions_has_horizon_by_padded_dim_and_is_deterministic_given_noise(fixed_batch) -> None:
    from flax import nnx

    observation, _ = fixed_batch
    graphdef, params = init_model(CONFIG, seed=0)

    @jax.jit
    def sample(rng, noise):
        first = Observation(observation.images[:1], observation.state[:1])
        return nnx.merge(graphdef, params).sample_actions(rng, first, num_steps=3, noise=noise)

    noise = jax.random.normal(jax.random.key(0), (1, 50, 32))
    a, b = sample(jax.random.key(0), noise), sample(jax.random.key(5), noise)
    assert a.shape == (1, 50, 32)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert np.isfinite(np.asarray(a)).all()


@pytest.mark.parametrize("name", ["so101_cpu", "so101_gpu"])
def test_every_named_config_builds_with_whole_patches(name: str) -> None:
    from flax import nnx

    from backends.jax_openpi.model import Pi0Policy

    config = get_config(name).model
    assert all(size % config.patch_size == 0 for size in config.image_size)
    model = nnx.eval_shape(lambda: Pi0Policy(config, rngs=nnx.Rngs(0)))
    assert model.patch_position.value.shape == (config.tokens_per_camera, config.width)
    assert len(model.layers) == config.depth and len(model.vision_layers) == config.vision_depth


def test_conv_stem_makes_one_token_per_patch_and_learns(fixed_batch) -> None:
    import dataclasses

    from flax import nnx

    from backends.jax_openpi.config import ModelConfig
    from backends.jax_openpi.model import ConvStem, Pi0Policy

    with pytest.raises(ValueError, match="patch_size is 8"):
        dataclasses.replace(CONFIG.model, conv_stem=(4, 8))
    stem = CONFIG.replace(model=dataclasses.replace(CONFIG.model, conv_stem=(4, 8, 8)))
    model = Pi0Policy(stem.model, rngs=nnx.Rngs(0))
    assert isinstance(model.patch_embed, ConvStem)
    observation, actions = fixed_batch
    tokens = model.embed_images(observation.images)
    assert tokens.shape == (CONFIG.batch_size, 2 * stem.model.tokens_per_camera, stem.model.width)
    # a checkpoint's config.json (lists, as JSON has them) rebuilds the same model config
    assert type(stem).from_dict(stem.to_dict()).model == stem.model
    assert ModelConfig().conv_stem == ()  # openpi's linear patch projection stays the default

    graphdef, params = init_model(stem, seed=0)
    state = new_train_state(stem, params)
    train_step = make_train_step(graphdef, stem)
    rng = jax.random.key(1)
    losses = []
    for _ in range(12):
        state.params, state.opt_state, state.ema, info = train_step(
            state.params, state.opt_state, state.ema, rng, observation, actions
        )
        losses.append(float(info["loss"]))
    assert losses[-1] < 0.7 * losses[0], losses


def test_state_based_config_has_no_image_weights_and_learns_from_the_environment_state() -> None:
    from flax import nnx

    from backends.jax_openpi.model import Pi0Policy

    config = get_config("so101_state_test")
    model = nnx.eval_shape(lambda: Pi0Policy(config.model, rngs=nnx.Rngs(0)))
    assert not hasattr(model, "patch_embed") and not hasattr(model, "vision_layers")
    rng = np.random.default_rng(0)
    batch, horizon, dim = config.batch_size, config.model.action_horizon, config.model.action_dim
    environment = rng.normal(size=(batch, config.model.environment_state_dim)).astype(np.float32)
    state = np.zeros((batch, dim), np.float32)
    actions = np.zeros((batch, horizon, dim), np.float32)
    actions[..., :6] = environment[:, None, :6]  # only the environment state tells the actions apart
    observation = Observation(None, jnp.asarray(state), jnp.asarray(environment))
    graphdef, params = init_model(config, seed=0)
    train_state = new_train_state(config, params)
    train_step = make_train_step(graphdef, config)
    losses = []
    state = train_state
    for _ in range(12):
        state.params, state.opt_state, state.ema, info = train_step(
            state.params, state.opt_state, state.ema, jax.random.key(1), observation, actions
        )
        losses.append(float(info["loss"]))
    assert losses[-1] < 0.7 * losses[0], losses
    sampled = nnx.merge(graphdef, state.params).sample_actions(jax.random.key(0), observation, 2)
    assert sampled.shape == (batch, horizon, dim) and np.isfinite(np.asarray(sampled)).all()


def test_a_model_with_neither_cameras_nor_environment_state_is_refused() -> None:
    from backends.jax_openpi.config import ModelConfig

    with pytest.raises(ValueError, match="needs a prefix"):
        ModelConfig(num_cameras=0)


def test_flow_times_follow_openpi_beta_1_5_1_on_0_001_to_1() -> None:
    times = np.sort(np.asarray(flow_time(jax.random.key(0), 20_000)))
    assert times.min() >= 0.001 and times.max() <= 1.0
    beta_cdf = ((times - 0.001) / 0.999) ** 1.5  # Beta(1.5, 1)'s CDF
    empirical_cdf = np.arange(1, len(times) + 1) / len(times)
    assert np.abs(empirical_cdf - beta_cdf).max() < 0.015  # Kolmogorov-Smirnov distance


def test_the_train_step_compiles_once_over_a_training_loop() -> None:
    """The loop feeds the step host batches and its own outputs; a second compile would cost more than
    the steps themselves on a CPU."""
    enable_compilation_cache()
    config = get_config("so101_state_test").replace(ema_decay=0.9)
    rng = np.random.default_rng(0)
    model = config.model
    graphdef, params = init_model(config, seed=0)
    state = new_train_state(config, params)
    train_step = make_train_step(graphdef, config)
    base_key = jax.random.key(0)
    for step in range(3):
        observation = Observation(
            None,
            rng.normal(size=(config.batch_size, model.action_dim)).astype(np.float32),
            rng.normal(size=(config.batch_size, model.environment_state_dim)).astype(np.float32),
        )
        actions = rng.normal(size=(config.batch_size, model.action_horizon, model.action_dim))
        state.params, state.opt_state, state.ema, _ = train_step(
            state.params,
            state.opt_state,
            state.ema,
            jax.random.fold_in(base_key, step),
            observation,
            actions.astype(np.float32),
        )
    assert train_step._cache_size() == 1
