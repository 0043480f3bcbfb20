"""Fault injection for LeRobot training (``backends/torch_lerobot:train``): the command SIGKILLed at seeded
random points (before its first checkpoint and after), the disk filling up mid-save, a checkpoint left
half-written. Each ends with nothing finished lost, and ``--resume`` finishing the run on the loss curve an
uninterrupted run draws, its step numbering and loss log continuing."""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from lerobot.scripts import lerobot_train

from backends.torch_lerobot.checkpoints import list_checkpoints
from backends.torch_lerobot.resume import (
    INCOMPLETE_DIR_NAME,
    PARTIAL_DIR_NAME,
    checkpoint_problem,
    read_loss_log,
)
from backends.torch_lerobot.train import main, train_policy
from libs.datasets.fixtures import record_tiny_state_demonstrations

torch.set_num_threads(1)  # CI's 2 busy cores: torch's default threads spin-wait
STEPS = 30
SAVE_EVERY = 5
KILL_POINTS = 5
#: the tiny ACT on joint + object state (about 0.1 s a step on one core)
OPTIONS = {"preset": "state", "batch_size": 4, "save_freq": SAVE_EVERY, "log_freq": 1, "threads": 1}


def _flags(dataset: Path, out: Path, steps: int = STEPS) -> list[str]:
    return [
        *("--policy", "act", "--preset", "state", "--dataset", str(dataset), "--out", str(out)),
        *("--steps", str(steps), "--batch-size", "4", "--save-freq", str(SAVE_EVERY)),
        *("--log-freq", "1", "--threads", "1"),
    ]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record_tiny_state_demonstrations(tmp_path_factory.mktemp("faults_training") / "demos")


@pytest.fixture(scope="module")
def reference_losses(dataset: Path) -> list[float]:
    """The loss curve of the same run trained straight through, in this process."""
    run = dataset.parent / "reference"
    train_policy("act", dataset, run, STEPS, **OPTIONS)
    return [entry["loss"] for entry in read_loss_log(run)]


def _complete_checkpoints(run: Path) -> list[str]:
    """The step folders of ``run``; every one must be whole (a save is renamed into place once written)."""
    if not (run / "checkpoints").is_dir():
        return []
    names = [checkpoint.name for checkpoint in list_checkpoints(run)]
    for name in names:
        assert checkpoint_problem(run / "checkpoints" / name) is None, f"checkpoint {name} is half-written"
    return names


def _assert_finished_like_the_reference(run: Path, reference_losses: list[float]) -> None:
    assert _complete_checkpoints(run)[-1] == f"{STEPS:06d}"
    log = read_loss_log(run)
    assert [entry["step"] for entry in log] == list(range(1, STEPS + 1)), "the loss log is not continuous"
    assert [entry["loss"] for entry in log] == pytest.approx(reference_losses, rel=1e-4)


def _kill_at(process: subprocess.Popen, run: Path, step: int, chance: random.Random) -> None:
    """SIGKILL ``process`` once its loss log reaches ``step`` (0: at a random moment of its start-up)."""
    if step == 0:
        time.sleep(chance.uniform(0.0, 4.0))
    else:
        deadline = time.monotonic() + 300
        while process.poll() is None and not any(entry["step"] >= step for entry in read_loss_log(run)):
            assert time.monotonic() < deadline, f"the run never reached step {step}"
            time.sleep(0.02)
        time.sleep(chance.uniform(0.0, 0.3))  # anywhere in the next step or two, a checkpoint save included
    process.send_signal(signal.SIGKILL)
    process.wait()


def test_killed_at_random_points_resume_finishes_the_same_run(
    dataset: Path, reference_losses: list[float], tmp_path: Path
) -> None:
    chance = random.Random(33)
    run = tmp_path / "run"
    # the first kill at a random moment of start-up (no checkpoint yet), the others at random steps
    kill_steps = [0, *sorted(chance.sample(range(1, STEPS - 3), KILL_POINTS - 1))]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    kept: list[str] = []
    landed, checkpoints_at_kill = [], []
    for attempt, step in enumerate(kill_steps):
        command = [sys.executable, "-m", "backends.torch_lerobot.train", *_flags(dataset, run)]
        resume = ["--resume"] if attempt > 0 else []
        with (tmp_path / f"stderr-{attempt}.txt").open("w") as stderr:
            process = subprocess.Popen(
                [*command, *resume], env=environment, stdout=subprocess.DEVNULL, stderr=stderr
            )
            _kill_at(process, run, step, chance)
        now = _complete_checkpoints(run)
        assert set(kept) <= set(now), f"a finished checkpoint was lost: {kept} then {now}"
        steps_logged = [entry["step"] for entry in read_loss_log(run)]
        assert steps_logged == list(range(1, len(steps_logged) + 1)), "the loss log is not continuous"
        kept = now
        landed.append(process.returncode == -signal.SIGKILL)
        checkpoints_at_kill.append(len(now))
    print(f"kills at steps {kill_steps}: landed {landed}, checkpoints then {checkpoints_at_kill}")
    assert all(landed), f"a run finished before its kill: {landed}"
    assert checkpoints_at_kill[0] == 0 and checkpoints_at_kill[-1] > 0, checkpoints_at_kill
    assert main([*_flags(dataset, run), "--resume"]) == 0
    _assert_finished_like_the_reference(run, reference_losses)


def test_a_full_disk_mid_save_is_one_line_and_the_earlier_checkpoint_resumes(
    dataset: Path,
    reference_losses: list[float],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run = tmp_path / "run"
    save = lerobot_train.save_checkpoint
    saves = []

    def save_until_the_disk_fills(checkpoint_dir: Path, *args, **kwargs) -> None:
        saves.append(checkpoint_dir)
        save(checkpoint_dir, *args, **kwargs)  # half of it written, then the disk is full
        if len(saves) == 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patch:
        patch.setattr(lerobot_train, "save_checkpoint", save_until_the_disk_fills)
        assert main(_flags(dataset, run)) == 2
    (error,) = (line for line in capsys.readouterr().err.splitlines() if line.startswith("error:"))
    assert "disk filled up" in error and "step 10 is intact" in error and "--resume" in error
    assert _complete_checkpoints(run) == ["000005", "000010"]
    assert not any((run / "checkpoints" / PARTIAL_DIR_NAME).iterdir()), "the half save was not cleared"
    assert main([*_flags(dataset, run), "--resume"]) == 0
    _assert_finished_like_the_reference(run, reference_losses)


def test_a_half_written_checkpoint_falls_back_to_the_one_before(
    dataset: Path, reference_losses: list[float], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    train_policy("act", dataset, run, STEPS, **OPTIONS)
    optimizer_state = run / "checkpoints" / f"{STEPS:06d}" / "training_state" / "optimizer_state.safetensors"
    optimizer_state.write_bytes(optimizer_state.read_bytes()[: optimizer_state.stat().st_size // 2])
    capsys.readouterr()
    assert main([*_flags(dataset, run), "--resume"]) == 0
    said = capsys.readouterr().err
    assert f"checkpoint {run / 'checkpoints' / f'{STEPS:06d}'} is incomplete" in said
    assert f"from its checkpoint at step {STEPS - SAVE_EVERY}" in said
    assert (run / "checkpoints" / INCOMPLETE_DIR_NAME / f"{STEPS:06d}-1").is_dir()  # kept, not deleted
    _assert_finished_like_the_reference(run, reference_losses)
    # every checkpoint damaged: one line, and the run starts again from step 0
    for checkpoint in list_checkpoints(run):
        (checkpoint / "pretrained_model" / "model.safetensors").unlink()
    assert main([*_flags(dataset, run), "--resume"]) == 0
    assert "has no complete checkpoint yet: training from step 0" in capsys.readouterr().err
    _assert_finished_like_the_reference(run, reference_losses)
