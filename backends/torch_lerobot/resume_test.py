"""``train --resume``: a run stopped after a checkpoint and resumed ends on the weights and loss curve of the
same run trained straight through; the checkpoint it picks and the refusals are one line each."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from lerobot.scripts import lerobot_train
from safetensors.torch import load_file

from backends.torch_lerobot.resume import (
    LOSS_LOG_FILE,
    checkpoint_problem,
    find_resume_point,
    read_loss_log,
    truncate_loss_log,
)
from backends.torch_lerobot.train import main, train_policy
from libs.datasets.fixtures import record_tiny_state_demonstrations

torch.set_num_threads(1)  # CI's 2 busy cores: torch's default threads spin-wait
STEPS = 6
#: the tiny ACT on the joint + object state: a few seconds a run
OPTIONS = {"preset": "state", "batch_size": 4, "save_freq": 2, "log_freq": 1, "threads": 1}


class Killed(Exception):
    """Stands in for the kill: raised inside LeRobot's loop, after a step's update."""


@pytest.fixture(scope="module")
def state_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record_tiny_state_demonstrations(tmp_path_factory.mktemp("resume") / "demos")


@pytest.fixture(scope="module")
def straight_run(state_dataset: Path) -> Path:
    run = state_dataset.parent / "straight"
    train_policy("act", state_dataset, run, STEPS, **OPTIONS)
    return run


def _weights(run: Path, step: int) -> dict[str, torch.Tensor]:
    return load_file(run / "checkpoints" / f"{step:06d}" / "pretrained_model" / "model.safetensors")


def _stop_after(monkeypatch: pytest.MonkeyPatch, last_step: int) -> None:
    """Make LeRobot's loop stop (as a kill would) once step ``last_step``'s update is done, before the
    trainer's hook (wrapped around this) logs its loss."""
    update = lerobot_train.update_policy

    def update_then_stop(train_metrics, *args, **kwargs):
        result = update(train_metrics, *args, **kwargs)
        if train_metrics.steps + 1 == last_step:
            raise Killed(f"killed after step {last_step}")
        return result

    monkeypatch.setattr(lerobot_train, "update_policy", update_then_stop)


def test_a_stopped_run_resumes_to_the_straight_runs_weights_and_loss_curve(
    state_dataset: Path, straight_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "killed"
    with monkeypatch.context() as patch:
        _stop_after(patch, 4)  # checkpoint 2 written, step 3 trained and logged, gone in step 4
        with pytest.raises(Killed):
            train_policy("act", state_dataset, run, STEPS, **OPTIONS)
    assert [entry["step"] for entry in read_loss_log(run)] == [1, 2, 3]
    checkpoints = train_policy("act", state_dataset, run, STEPS, resume=True, **OPTIONS)
    assert [checkpoint.name for checkpoint in checkpoints] == ["000002", "000004", "000006"]
    straight, resumed = _weights(straight_run, STEPS), _weights(run, STEPS)
    assert straight.keys() == resumed.keys()
    for name in straight:
        torch.testing.assert_close(resumed[name], straight[name], rtol=1e-5, atol=1e-6, msg=name)
    straight_log, resumed_log = read_loss_log(straight_run), read_loss_log(run)
    assert [entry["step"] for entry in resumed_log] == list(range(1, STEPS + 1))
    for expected, got in zip(straight_log, resumed_log, strict=True):
        assert got["loss"] == pytest.approx(expected["loss"], rel=1e-4), got["step"]
        assert got["lr"] == pytest.approx(expected["lr"], rel=1e-6), got["step"]


def test_the_same_command_on_an_existing_run_says_to_add_resume(
    straight_run: Path, state_dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--policy", "act", "--dataset", str(state_dataset), "--out", str(straight_run), "--steps", "6"]
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "add --resume" in error
    # a finished run resumed is left as it is
    assert main([*argv, "--preset", "state", "--resume"]) == 0
    assert "already trained to step 6" in capsys.readouterr().err
    assert main([*argv, "--resume", "--steps", "4"]) == 2
    assert "pass --steps 6 or more" in capsys.readouterr().err


def test_resume_on_a_folder_that_is_no_run_is_one_line(
    state_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    argv = ["--policy", "act", "--dataset", str(state_dataset), "--out", str(tmp_path), "--steps", "2"]
    assert main([*argv, "--resume"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "no checkpoint to resume" in error and "notes.txt" in error
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_damaged_checkpoint_is_found_and_the_one_before_it_picked(
    straight_run: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(straight_run, run, symlinks=True)
    last = run / "checkpoints" / "000006"
    assert checkpoint_problem(last) is None
    weights = last / "pretrained_model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    assert checkpoint_problem(last) == "pretrained_model/model.safetensors is truncated or corrupt"
    (run / "checkpoints" / "000004" / "training_state" / "rng_state.safetensors").unlink()
    point = find_resume_point(run)
    assert point.step == 2 and [checkpoint.name for checkpoint, _ in point.damaged] == ["000006", "000004"]


def test_the_loss_log_is_cut_back_to_the_resumed_step(tmp_path: Path) -> None:
    lines = [json.dumps({"step": step, "loss": 1.0 / step}) for step in (1, 2, 3, 4)]
    (tmp_path / LOSS_LOG_FILE).write_text("\n".join(lines) + '\n{"step": 5, "lo')  # a kill mid-line
    assert truncate_loss_log(tmp_path, 2) == 2
    assert [entry["step"] for entry in read_loss_log(tmp_path)] == [1, 2]


def test_a_run_on_the_policys_own_schedule_resumes_too(
    state_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # LeRobot's CLI reads a resumed run's optimizer and scheduler back from its train_config.json; here they
    # are the policy's preset again (ACT's: AdamW at a constant rate)
    run, options = tmp_path / "preset", {**OPTIONS, "lr_schedule": "preset"}
    with monkeypatch.context() as patch:
        _stop_after(patch, 3)
        with pytest.raises(Killed):
            train_policy("act", state_dataset, run, STEPS, **options)
    checkpoints = train_policy("act", state_dataset, run, STEPS, resume=True, **options)
    assert [checkpoint.name for checkpoint in checkpoints] == ["000002", "000004", "000006"]
    log = read_loss_log(run)
    assert [entry["step"] for entry in log] == list(range(1, STEPS + 1))
    assert len({entry["lr"] for entry in log}) == 1
