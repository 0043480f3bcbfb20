"""The torch_lerobot resolve carries LeRobot's stack (numpy 2) and none of the JAX/openpi stack."""

import importlib.util

import numpy


def test_lerobot_stack_imports() -> None:
    import lerobot
    import torch
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    assert lerobot.__version__.startswith("0.6")
    assert torch.tensor([1.0, 2.0]).sum().item() == 3.0
    assert LeRobotDataset is not None


def test_numpy_is_2x() -> None:
    assert int(numpy.__version__.split(".")[0]) == 2


def test_jax_stack_is_not_importable() -> None:
    for module in ("jax", "flax", "openpi_client"):
        assert importlib.util.find_spec(module) is None, f"{module} leaked into the torch_lerobot resolve"
