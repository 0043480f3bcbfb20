"""The train command's fast path (samples and frames held in memory, our hooks around LeRobot's loop) trains
on the same batches as LeRobot's own loop: on a toy run the loss is the same step for step.

The reference is ``lerobot_train.train`` on the same ``TrainPipelineConfig`` with none of our hooks, its data
read by LeRobot's dataset reader (video frames decoded per sample); its per-step loss is read as
``update_policy`` returns (observed, not changed). Dropout is off so that the loss depends only on the
weights and the batch: both loops draw the data order from LeRobot's seeded sampler, but LeRobot's data
loader draws its iterator's base seed from the global RNG where ours draws it from its own generator
(``train._cycle_hook``), so dropout masks would differ by that one draw.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from lerobot.scripts import lerobot_train

from backends.torch_lerobot import train
from backends.torch_lerobot.resume import read_loss_log
from libs.datasets.fixtures import record_tiny_demonstrations, record_tiny_state_demonstrations

torch.set_num_threads(1)  # CI's 2 busy cores: torch's default threads spin-wait
STEPS = 5


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("parity")
    return {
        "state": record_tiny_state_demonstrations(root / "state"),
        "vision": record_tiny_demonstrations(root / "vision"),
    }


def _plain_lerobot_losses(
    config: train.TrainConfig, out: Path, monkeypatch: pytest.MonkeyPatch
) -> list[float]:
    """LeRobot's loop on ``config``'s pipeline, as lerobot-train runs it: every step's loss."""
    pipeline = train._pipeline_config(config, Path(config.dataset), out, config.overrides())
    losses: list[float] = []
    update = lerobot_train.update_policy

    def update_and_observe(train_metrics: Any, *args: Any, **kwargs: Any) -> Any:
        train_metrics, output = update(train_metrics, *args, **kwargs)
        losses.append(float(train_metrics.metrics["loss"].val))
        return train_metrics, output

    with monkeypatch.context() as patch:
        patch.setattr(lerobot_train, "update_policy", update_and_observe)
        with train._lerobot_cli_free():
            lerobot_train.train(pipeline)
    return losses


@pytest.mark.parametrize(
    ("dataset_name", "preset", "batch_size"),
    [("state", "state", 8), ("vision", "cpu", 4)],
    ids=["act-state", "act-vision"],
)
def test_fast_path_loss_equals_lerobots_loop_step_for_step(
    datasets: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    dataset_name: str,
    preset: str,
    batch_size: int,
) -> None:
    config = train.TrainConfig(
        policy="act",
        dataset=datasets[dataset_name],
        steps=STEPS,
        out=tmp_path / "ours",
        preset=preset,
        batch_size=batch_size,
        seed=7,
        threads=1,
        log_freq=1,
        policy_overrides={"dropout": 0.0},
    )
    plain = _plain_lerobot_losses(config, tmp_path / "plain", monkeypatch)
    train.run_training(config)
    ours = [entry["loss"] for entry in read_loss_log(tmp_path / "ours")]
    assert len(plain) == len(ours) == STEPS
    assert ours == pytest.approx(plain, rel=1e-5, abs=1e-7)
    assert len(set(ours)) > 1  # the steps trained: a loss that never moved would prove nothing
