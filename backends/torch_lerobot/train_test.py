"""The trainer's learning-rate schedules: what ``--lr-schedule`` gives LeRobot's training loop."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
from lerobot.configs.default import DatasetConfig
from lerobot.configs.train import TrainPipelineConfig

from backends.torch_lerobot.presets import make_policy_config
from backends.torch_lerobot.train import TrainError, _use_cosine_schedule, build_parser, main, train_policy


def _config(steps: int) -> TrainPipelineConfig:
    return TrainPipelineConfig(
        dataset=DatasetConfig(repo_id="local/none"),
        policy=make_policy_config("act", "state", device="cpu"),
        steps=steps,
    )


def _learning_rates(config: TrainPipelineConfig, steps: int) -> list[float]:
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([parameter], lr=config.optimizer.lr)
    scheduler = config.scheduler.build(optimizer, steps)
    rates = []
    for _ in range(steps + 1):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def test_cosine_warms_up_then_ends_on_the_final_fraction_at_the_last_step() -> None:
    config = _config(1000)
    _use_cosine_schedule(config, final_fraction=0.1, warmup_steps=100)
    peak = config.policy.optimizer_lr
    rates = _learning_rates(config, 1000)
    assert config.use_policy_training_preset is False
    assert rates[0] < 0.02 * peak  # warm-up starts near zero
    assert 0.97 * peak < max(rates) <= peak  # cosine decay runs from step 0, so the warm-up ends just below
    assert rates[1000] == pytest.approx(0.1 * peak, rel=1e-3)
    assert all(later <= earlier + 1e-12 for earlier, later in itertools.pairwise(rates[100:]))


def test_schedule_flags_default_to_auto_and_bad_values_are_one_line(tmp_path) -> None:
    arguments = build_parser().parse_args(["--policy", "act", "--dataset", "d", "--steps", "1", "--out", "o"])
    assert arguments.lr_schedule == "auto"
    dataset = tmp_path / "data"
    (dataset / "meta").mkdir(parents=True)
    (dataset / "meta" / "info.json").write_text("{}")
    (dataset / "meta" / "stats.json").write_text("{}")
    with pytest.raises(TrainError, match="--lr-final-fraction"):
        train_policy("act", dataset, tmp_path / "run", 10, lr_final_fraction=2.0)


def test_vision_backbone_flag_offers_the_groupnorm_resnets_and_refuses_other_policies(capsys) -> None:
    common = ["--dataset", "d", "--steps", "1", "--out", "o"]
    parsed = build_parser().parse_args(["--policy", "act", *common, "--vision-backbone", "resnet18_gn_w32"])
    assert parsed.vision_backbone == "resnet18_gn_w32"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--policy", "act", *common, "--vision-backbone", "resnet50"])
    capsys.readouterr()
    assert main(["--policy", "smolvla", *common, "--vision-backbone", "resnet18_gn_w16"]) == 2
    assert "--vision-backbone applies to act and diffusion" in capsys.readouterr().err
    with_weights = ["--vision-backbone", "resnet18_gn_w16", "--backbone-dir", "w"]
    assert main(["--policy", "act", *common, *with_weights]) == 2
    assert "drop one of the two" in capsys.readouterr().err


def test_library_callers_get_the_same_backbone_refusals_as_the_command(tmp_path: Path) -> None:
    # train_policy's own checks, before any dataset is read: a caller passing policy_overrides is told
    # what is wrong in our words, not by LeRobot or torchvision halfway through building the model.
    dataset, out = tmp_path / "d", tmp_path / "o"
    with pytest.raises(TrainError, match="unknown --vision-backbone 'resnet50'"):
        train_policy("act", dataset, out, 1, policy_overrides={"vision_backbone": "resnet50"})
    with pytest.raises(TrainError, match="applies to act and diffusion"):
        train_policy("pi0", dataset, out, 1, policy_overrides={"vision_backbone": "resnet18"})
    with pytest.raises(TrainError, match="drop one of the two"):
        train_policy(
            "diffusion",
            dataset,
            out,
            1,
            backbone_dir=tmp_path / "w",
            policy_overrides={"vision_backbone": "resnet18_gn_w32"},
        )
