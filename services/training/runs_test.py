"""Which training runs are finished, and what a runs file may hold: the training runner's bookkeeping (its
runs on a Ray cluster are tested in tests/ray_cluster_training_test.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from services.quickstart.stamps import read_stamp, write_stamp
from services.training import runs as training_runs
from services.training import train_runs


def a_run(
    root: Path, name: str = "act-25", steps: int = 4, trainer: str = "torch_lerobot"
) -> training_runs.TrainingRun:
    out = root / "runs" / name
    argv = ("--policy", "act", "--dataset", str(root / "data"), "--steps", str(steps), "--out", str(out))
    return training_runs.TrainingRun(
        name, trainer, argv, out, out / "checkpoints" / f"{steps:06d}", inputs=(root / "data",)
    )


def train_by_hand(run: training_runs.TrainingRun) -> None:
    """What the runner does around a task that trained ``run``."""
    training_runs.begin(run)
    run.done_marker.mkdir(parents=True)
    training_runs.finish(run, {"exit_code": 0, "seconds": 12.5, "node_id": "n1"})


def test_a_runs_file_round_trips(tmp_path: Path) -> None:
    runs = [a_run(tmp_path), a_run(tmp_path, "jax-25", trainer="jax_openpi")]
    runs[1] = replace(runs[1], threads=2, gpu=True, fingerprint=("--steps", "4"))
    assert training_runs.read_runs_file(training_runs.write_runs_file(tmp_path / "runs.json", runs)) == runs


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "act-25"}, "two runs are named 'act-25'"),
        ({"trainer": "tensorflow"}, "names trainer 'tensorflow': use one of torch_lerobot, jax_openpi"),
        ({"threads": 0}, "asks for 0 threads: give at least 1"),
    ],
)
def test_a_bad_runs_file_is_one_line(tmp_path: Path, change: dict, message: str) -> None:
    good = a_run(tmp_path, "other")
    bad = replace(good, **change)
    path = training_runs.write_runs_file(
        tmp_path / "runs.json", [a_run(tmp_path), bad] if "name" in change else [bad]
    )
    with pytest.raises(training_runs.TrainingRunError, match=message):
        training_runs.read_runs_file(path)


def test_a_file_that_is_not_a_runs_file_is_one_line(tmp_path: Path, capsys) -> None:
    (tmp_path / "runs.json").write_text(json.dumps([{"name": "x"}]))
    assert train_runs.main(["--runs", str(tmp_path / "runs.json")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"error: the runs file {tmp_path / 'runs.json'} is not a list of training runs")
    assert "\n" not in error


def test_a_run_is_finished_only_when_stamped_finished_with_its_last_checkpoint(tmp_path: Path) -> None:
    run = a_run(tmp_path)
    assert not training_runs.is_finished(run)
    training_runs.begin(run)
    run.done_marker.mkdir(parents=True)  # written, but the task never came back
    assert not training_runs.is_finished(run) and not read_stamp(run.output).finished
    training_runs.finish(run, {"exit_code": 0, "seconds": 12.5})
    assert training_runs.is_finished(run) and training_runs.read_record(run.output)["seconds"] == 12.5
    # a half-written checkpoint never counts: the trainers write it under another name until it is whole
    half = a_run(tmp_path, "half")
    training_runs.begin(half)
    (half.output / "checkpoints" / ".partial" / half.done_marker.name).mkdir(parents=True)
    with pytest.raises(training_runs.TrainingRunError, match="ended without writing"):
        training_runs.finish(half, {"exit_code": 0, "log": "x.log"})
    assert not training_runs.is_finished(half) and not training_runs.record_path(half.output).exists()


def test_a_run_continues_its_unfinished_folder_and_moves_another_commands_aside(tmp_path: Path) -> None:
    run = a_run(tmp_path)
    training_runs.begin(run)
    made_id = read_stamp(run.output).made_id
    run.output.mkdir(parents=True)  # the trainer started, and was killed
    (run.output / "loss_log.jsonl").write_text("{}\n")
    assert training_runs.begin(run) == f"continuing the unfinished {run.output}"
    assert read_stamp(run.output).made_id == made_id and (run.output / "loss_log.jsonl").exists()

    train_by_hand(run)
    longer = a_run(tmp_path, steps=8)  # the same folder, asked to train further: another command
    assert not training_runs.is_finished(longer)
    said = training_runs.begin(longer)
    kept = run.output.with_name(f"{run.output.name}.stale-1")
    assert said.startswith("its earlier output was made with `--steps 4`") and said.endswith(str(kept))
    assert (kept / "checkpoints" / "000004").is_dir() and training_runs.read_record(kept)["seconds"] == 12.5
    assert read_stamp(kept).finished and not read_stamp(longer.output).finished


def test_a_remade_input_makes_a_finished_run_stale(tmp_path: Path) -> None:
    run = a_run(tmp_path)
    train_by_hand(run)
    assert training_runs.is_finished(run)
    write_stamp(tmp_path / "data", read_stamp(run.output))  # the dataset made again: a new id
    assert not training_runs.is_finished(run)


def test_a_trainer_not_in_this_resolve_names_the_runner_to_use(tmp_path: Path) -> None:
    # this test runs in the sim resolve, which holds neither stack
    with pytest.raises(
        training_runs.TrainingRunError,
        match=r"`./pants run services/training:train-runs-jax_openpi -- \.\.\.`",
    ):
        training_runs.check_trainers_installed([a_run(tmp_path, trainer="jax_openpi")])


def test_a_run_reserves_its_threads_and_a_gpu_only_where_the_cluster_has_one(tmp_path: Path) -> None:
    run = replace(a_run(tmp_path), threads=4)
    assert training_runs.task_resources(run, cluster_gpus=8) == {"num_cpus": 4, "num_gpus": 0}
    assert training_runs.task_resources(replace(run, gpu=True), cluster_gpus=1) == {
        "num_cpus": 4,
        "num_gpus": 1,
    }
    assert training_runs.task_resources(replace(run, gpu=True), cluster_gpus=0) == {
        "num_cpus": 4,
        "num_gpus": 0,
    }
