"""A checkpoint whose weights never reached the policy is refused in one line instead of scoring a random
network: a missing weights file, names saved from a wrapped model, a load that did not happen."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from backends.torch_lerobot.adapter import LeRobotPolicy
from backends.torch_lerobot.checkpoints import CheckpointError
from backends.torch_lerobot.loaded_weights import WEIGHTS_FILE, check_weights_loaded
from backends.torch_lerobot.train import train_policy
from libs.datasets.record import record_scripted_dataset
from libs.sim.scene_config import SceneConfig

torch.set_num_threads(1)


class _TiedNet(torch.nn.Module):
    """Embedding and head share one tensor, as a VLM's embed_tokens and lm_head do."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(5, 3)
        self.head = torch.nn.Linear(3, 5, bias=False)
        self.head.weight = self.embed.weight
        self.proj = torch.nn.Linear(3, 3)


def _saved(tmp_path: Path, net: torch.nn.Module, rename=lambda key: key) -> Path:
    state = {key: value.detach().clone() for key, value in net.state_dict().items() if key != "head.weight"}
    save_file({rename(key): value for key, value in state.items()}, tmp_path / WEIGHTS_FILE)
    return tmp_path


def test_a_loaded_net_passes_and_a_tied_tensor_saved_once_counts_as_present(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = _TiedNet()
    check_weights_loaded(net, _saved(tmp_path, net))


def test_names_from_a_compiled_model_are_refused_with_the_prefix_to_strip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    saved = _saved(tmp_path, _TiedNet(), rename=lambda key: f"_orig_mod.{key}")
    fresh = _TiedNet()
    fresh.load_state_dict(load_file(saved / WEIGHTS_FILE), strict=False)  # LeRobot's non-strict load
    with pytest.raises(CheckpointError, match="random initial weights.*prefix '_orig_mod.'") as raised:
        check_weights_loaded(fresh, saved)
    assert "\n" not in str(raised.value)


def test_a_load_that_did_not_happen_and_a_missing_file_are_refused(tmp_path: Path) -> None:
    torch.manual_seed(0)
    saved = _saved(tmp_path, _TiedNet())
    with pytest.raises(CheckpointError, match="differs from .* after loading"):
        check_weights_loaded(_TiedNet(), saved)  # another random init: same names, other values
    (saved / WEIGHTS_FILE).unlink()
    with pytest.raises(CheckpointError, match=f"has no {WEIGHTS_FILE}: LeRobot would run"):
        check_weights_loaded(_TiedNet(), saved)


def test_a_pi0_checkpoint_without_its_weights_is_refused_where_lerobot_loads_it_random(
    tmp_path: Path,
) -> None:
    dataset = tmp_path / "demos"
    scene = dataclasses.replace(SceneConfig().with_image_size(48, 64), environment_state=True)
    record_scripted_dataset(dataset, episodes=1, seed=0, scene=scene, max_steps=20, progress=False)
    checkpoint = train_policy(
        "pi0",
        dataset,
        tmp_path / "run",
        steps=1,
        batch_size=2,
        preset="state",
        tiny_backbone_dir=tmp_path / "backbone",
    )[-1]
    LeRobotPolicy(checkpoint)  # as trained: loads
    weights = checkpoint / "pretrained_model" / WEIGHTS_FILE
    tensors = load_file(weights)
    save_file({f"_orig_mod.{key}": value for key, value in tensors.items()}, weights)
    with pytest.raises(CheckpointError, match="prefix '_orig_mod.'"):
        LeRobotPolicy(checkpoint)
    weights.unlink()
    with pytest.raises(CheckpointError, match=f"has no {WEIGHTS_FILE}"):
        LeRobotPolicy(checkpoint)
