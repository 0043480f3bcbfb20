"""Training runs as Ray tasks on the docs' token-auth cluster, on loopback: a head and a second node process
(one CPU each), a tiny learning-curve grid (ACT on the joint + object state: 1 or 2 scripted demonstrations ×
training seed, 4 steps each) trained through the cluster stores, cell by cell, the weights, optimizer state
and loss log that the train command run locally one cell after another stores, with the runs spread over
both nodes. Killed after one cell, a rerun trains only the unfinished cells. An address nothing listens on,
and a cluster that wants a token this machine lacks, are one line each. Only the Ray processes this test
starts are stopped, by PID (never ``ray stop``)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import safetensors.torch
import torch

from backends.torch_lerobot import train as torch_train
from libs.datasets import convert
from libs.datasets.fixtures import record_tiny_state_demonstrations
from services.eval.fixtures import RAY_VARIABLES, LoopbackCluster, free_port, token_auth_cluster
from services.quickstart.stamps import read_stamp
from services.training import train_runs
from services.training.runs import TrainingRun, read_record, write_runs_file

torch.set_num_threads(1)  # CI's 2 busy cores: torch's default threads spin-wait
STEPS = 4
#: the trainer's outputs that are a pure function of the command (train_config.json names the paths)
COMPARED_FILES = (
    "pretrained_model/model.safetensors",
    "training_state/optimizer_state.safetensors",
    "training_state/rng_state.safetensors",
)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """The grid's demonstration counts: the tiny pool's first 1 and both 2 episodes."""
    pool = record_tiny_state_demonstrations(tmp_path_factory.mktemp("grid") / "pool")
    first = pool.with_name("first-1")
    assert convert.main(["filter", str(pool), str(first), "--episodes", "0"]) == 0
    return {1: first, 2: pool}


def grid(datasets: dict[int, Path], root: Path) -> list[TrainingRun]:
    """Cells of (demonstrations, training seed), each the train command as the learning-curve grid runs it."""
    runs = []
    for demos, seed in ((1, 1000), (2, 1000), (2, 2000)):
        out = root / f"act-state-{demos}-seed{seed}"
        argv = (
            *("--policy", "act", "--preset", "state", "--dataset", str(datasets[demos])),
            *("--steps", str(STEPS), "--batch-size", "4", "--save-freq", "2", "--log-freq", "1"),
            *("--threads", "1", "--seed", str(seed), "--out", str(out)),
        )
        runs.append(TrainingRun(out.name, "torch_lerobot", argv, out, out / "checkpoints" / f"{STEPS:06d}"))
    return runs


@pytest.fixture(scope="module")
def local_grid(datasets: dict[int, Path], tmp_path_factory: pytest.TempPathFactory) -> list[TrainingRun]:
    """The grid as it runs locally today: the train command, one cell after another."""
    runs = grid(datasets, tmp_path_factory.mktemp("local"))
    for run in runs:
        assert torch_train.main(list(run.argv)) == 0
    return runs


@pytest.fixture(scope="module")
def cluster() -> Iterator[LoopbackCluster]:
    with token_auth_cluster(nodes=2, cpus_per_node=1) as started:
        yield started


def runner_command(runs_file: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "services.training.train_runs", "--runs", str(runs_file), *extra]


def stored_cell(run: TrainingRun) -> dict[str, object]:
    """What a cell stores that does not depend on where it ran: every checkpoint's weights, optimizer and
    RNG state, and the loss log."""
    cell: dict[str, object] = {"loss_log": (run.output / "loss_log.jsonl").read_text()}
    for checkpoint in sorted((run.output / "checkpoints").glob("[0-9]*")):
        for name in COMPARED_FILES:
            cell[f"{checkpoint.name}/{name}"] = (checkpoint / name).read_bytes()
    return cell


def test_a_grid_trained_on_the_cluster_stores_the_cells_of_a_local_run(
    cluster: LoopbackCluster, datasets: dict[int, Path], local_grid: list[TrainingRun], tmp_path: Path
) -> None:
    runs = grid(datasets, tmp_path / "runs")
    runs_file = write_runs_file(tmp_path / "runs.json", runs)
    trained = subprocess.run(
        runner_command(runs_file, "--address", cluster.address),
        env=cluster.environment(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "trained 3 run(s); 0 were already finished" in trained.stdout
    for run, local in zip(runs, local_grid, strict=True):
        assert stored_cell(run) == stored_cell(local), run.name
        stamp = read_stamp(run.output)
        assert stamp is not None and stamp.finished and stamp.fingerprint == list(run.argv)
        record = read_record(run.output)
        assert record is not None and record["exit_code"] == 0 and record["argv"][-1] == "--resume"
    nodes = {read_record(run.output)["node_id"] for run in runs}
    assert len(nodes) == 2, "the runs did not spread over both nodes"


def wait_until_finished(run: TrainingRun, process: subprocess.Popen, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while not ((stamp := read_stamp(run.output)) is not None and stamp.finished):
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, f"{run.name} did not finish in time"
        time.sleep(0.2)


def test_a_rerun_after_a_kill_trains_only_the_unfinished_cells(
    cluster: LoopbackCluster, datasets: dict[int, Path], local_grid: list[TrainingRun], tmp_path: Path
) -> None:
    runs = grid(datasets, tmp_path / "runs")[:2]
    runs_file = write_runs_file(tmp_path / "runs.json", runs)
    command = runner_command(runs_file, "--address", cluster.address, "--workers", "1")
    first = subprocess.Popen(
        command, env=cluster.environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    wait_until_finished(runs[0], first)
    first.send_signal(signal.SIGKILL)  # the second cell has just been handed to the cluster
    first.wait()
    finished_record = read_record(runs[0].output)
    killed_stamp = read_stamp(runs[1].output)
    assert killed_stamp is None or not killed_stamp.finished

    again = subprocess.run(command, env=cluster.environment(), capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{runs[0].name}: finished ({runs[0].done_marker}), skipping" in again.stdout
    assert "trained 1 run(s); 1 were already finished" in again.stdout
    assert read_record(runs[0].output) == finished_record  # not trained again
    log = runs[0].output.with_name(f"{runs[0].name}.train.log").read_text()
    assert log.count("$ python -m backends.torch_lerobot.train") == 1
    assert read_stamp(runs[1].output).finished
    assert stored_cell(runs[0]) == stored_cell(local_grid[0])
    # The killed cell continued from its last complete checkpoint (LeRobot's resume: the same batches and
    # RNG state, weights equal to float rounding) or started over.
    resumed, local = stored_cell(runs[1]), stored_cell(local_grid[1])
    assert resumed.keys() == local.keys()
    assert [json.loads(line)["step"] for line in resumed["loss_log"].splitlines()] == list(
        range(1, STEPS + 1)
    )
    weights = f"{STEPS:06d}/{COMPARED_FILES[0]}"
    resumed_weights, local_weights = (
        safetensors.torch.load(resumed[weights]),
        safetensors.torch.load(local[weights]),
    )
    for name, tensor in local_weights.items():
        torch.testing.assert_close(resumed_weights[name], tensor, rtol=1e-5, atol=1e-6, msg=name)


def one_line_error(monkeypatch, capsys, runs_file: Path, address: str, home: Path) -> str:
    for name in RAY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    assert train_runs.main(["--runs", str(runs_file), "--address", address]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error, error
    return error


def test_an_unreachable_address_is_one_line(datasets, tmp_path: Path, monkeypatch, capsys) -> None:
    runs_file = write_runs_file(tmp_path / "runs.json", grid(datasets, tmp_path / "runs")[:1])
    address = f"127.0.0.1:{free_port()}"
    error = one_line_error(monkeypatch, capsys, runs_file, address, tmp_path)
    assert error.startswith(f"error: cannot reach a Ray cluster at {address}")
    assert "`ray start --head`" in error
    assert not (tmp_path / "runs").exists()  # nothing was started


def test_a_cluster_wanting_a_token_this_machine_lacks_is_one_line(
    cluster: LoopbackCluster, datasets, tmp_path: Path, monkeypatch, capsys
) -> None:
    runs_file = write_runs_file(tmp_path / "runs.json", grid(datasets, tmp_path / "runs")[:1])
    error = one_line_error(monkeypatch, capsys, runs_file, cluster.address, tmp_path / "home-without-token")
    assert error.startswith(f"error: the Ray cluster at {cluster.address} requires token authentication")
