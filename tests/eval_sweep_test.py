"""The sweep's promises: a killed sweep resumes to the identical report without duplicate rows, the same
seeds give the same outcomes on 1 or 2 Ray workers, and an unreachable cluster is one clear line."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from libs.evaluation.results.episode_record import EpisodeRecord
from libs.evaluation.sweep import EnvSettings, SweepConfig, evaluate
from services.eval import fixtures as processes
from services.eval import sweep as sweep_cli

EPISODES = 4
#: Timing figures differ run to run; everything else in the report must be identical.
TIMING_FIELDS = {"latency_mean_ms", "latency_p95_ms", "wall_time_s_mean"}


def config(**changes) -> SweepConfig:
    values = dict(policy="scripted", episodes=EPISODES, env=EnvSettings(), serial=True, progress=False)
    values.update(changes)
    return SweepConfig(**values)


def report_without_timings(out: Path) -> dict:
    report = json.loads((out / "report.json").read_text())
    for checkpoint in report["checkpoints"]:
        for name in TIMING_FIELDS:
            checkpoint.pop(name)
    return report


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference")
    evaluate(config(), out, argv=["reference"])
    return out


class Crash(Exception):
    pass


def test_crash_mid_sweep_then_resume_gives_identical_report(tmp_path: Path, reference: Path) -> None:
    finished: list[EpisodeRecord] = []

    def crash_after_two(record: EpisodeRecord) -> None:
        finished.append(record)
        if len(finished) == 2:
            raise Crash("injected crash after 2 episodes")

    with pytest.raises(Crash):
        evaluate(config(), tmp_path, argv=["first"], on_record=crash_after_two)
    assert len(processes.stored(tmp_path)) == 2  # both finished episodes were written at once

    result = evaluate(config(), tmp_path, argv=["resumed"])
    assert (result.ran, result.skipped) == (EPISODES - 2, 2)
    rows = processes.stored(tmp_path)
    assert len(rows) == len({(row[0], row[1]) for row in rows}) == EPISODES
    assert sorted(rows) == processes.stored(reference)
    assert report_without_timings(tmp_path) == report_without_timings(reference)

    again = evaluate(config(), tmp_path, argv=["nothing left"])
    assert (again.ran, again.skipped) == (0, EPISODES)
    assert len(processes.stored(tmp_path)) == EPISODES


def test_killed_process_resumes_without_duplicates(tmp_path: Path, reference: Path) -> None:
    command = processes.sweep_command(tmp_path, "--serial", episodes=EPISODES)
    environment = processes.subprocess_environment()
    process = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    processes.wait_for_rows(tmp_path, process, timeout_s=120)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_with = len(processes.stored(tmp_path))
    assert 1 <= killed_with < EPISODES, "the sweep should have been killed mid-way"

    finished = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert f"report: {tmp_path / 'report.md'}" in finished.stdout
    assert f"{EPISODES - killed_with} episodes, {killed_with} already done" in finished.stdout
    assert processes.stored(tmp_path) == processes.stored(reference)
    assert report_without_timings(tmp_path) == report_without_timings(reference)


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(
        address="local",
        num_cpus=2,
        object_store_memory=100 * 1024 * 1024,
        include_dashboard=False,
        log_to_driver=False,
    )
    yield ray
    ray.shutdown()


def test_one_and_two_ray_workers_give_identical_outcomes(tmp_path: Path, reference: Path, local_ray) -> None:
    one = evaluate(config(serial=False, workers=1), tmp_path / "one", argv=["one"])
    two = evaluate(config(serial=False, workers=2), tmp_path / "two", argv=["two"])
    assert processes.stored(tmp_path / "one") == processes.stored(tmp_path / "two")
    assert processes.stored(tmp_path / "two") == processes.stored(reference)  # and equal to serial
    # One policy load per worker per checkpoint, not one per episode.
    assert (one.policy_loads, two.policy_loads) == (1, 2)


def test_episodes_sent_to_ray_workers_in_lockstep_batches_are_each_stored_once(
    tmp_path: Path, reference: Path, local_ray
) -> None:
    """Batches of 3 episodes per call (the expert takes no batches, so each worker plays them in turn)."""
    evaluate(config(serial=False, workers=2, env=EnvSettings(lockstep_envs=3)), tmp_path, argv=["batched"])
    assert processes.stored(tmp_path) == processes.stored(reference)


def test_contract_violation_in_a_ray_worker_is_one_line(tmp_path: Path, local_ray, capsys) -> None:
    code = sweep_cli.main(
        ["--policy", "scripted:sideways", "--episodes", "1", "--out", str(tmp_path), "--no-progress"]
    )
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: scripted policy takes 'joint' or 'ee'") and "\n" not in error


def test_unreachable_ray_address_is_one_clear_line(tmp_path: Path, capsys) -> None:
    code = sweep_cli.main(
        ["--policy", "scripted", "--episodes", "1", "--ray-address", "127.0.0.1:9", "--out", str(tmp_path)]
    )
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error
    assert error.startswith("error: cannot reach a Ray cluster at 127.0.0.1:9")
    assert "ray start --head" in error and "drop --ray-address" in error
