"""The jax_openpi resolve carries JAX + openpi-client (numpy 1.x) and none of the torch/LeRobot stack."""

import importlib.util

import numpy


def test_jax_stack_imports() -> None:
    import flax
    import jax.numpy as jnp
    import openpi_client
    import optax
    import orbax.checkpoint

    assert float(jnp.arange(3.0).sum()) == 3.0
    assert flax and optax and orbax.checkpoint and openpi_client


def test_numpy_is_1x() -> None:
    assert int(numpy.__version__.split(".")[0]) == 1


def test_torch_stack_is_not_importable() -> None:
    for module in ("torch", "lerobot"):
        assert importlib.util.find_spec(module) is None, f"{module} leaked into the jax_openpi resolve"
