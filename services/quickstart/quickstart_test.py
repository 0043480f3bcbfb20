"""The quickstart's plan and summary: what a newcomer's first command does and what it prints."""

import json
import shutil
from pathlib import Path

import pytest

from services.quickstart.quickstart import SIZES, main, plan_stages, run_stages
from services.quickstart.summary import SummaryError, write_summary


def test_plan_runs_every_stage_through_its_own_pants_target(tmp_path: Path) -> None:
    stages = plan_stages(tmp_path, SIZES["default"])
    assert [stage.name for stage in stages] == [
        "record-state",
        "train-act-state",
        "eval-act-state",
        "train-jax-state",
        "eval-jax-state",
        "record",
        "train-act",
        "eval-act",
        "summary",
    ]
    for stage in stages:
        command = stage.command()
        assert command[:4] == ["./pants", "--no-pantsd", "run", stage.target]
        assert str(tmp_path) in " ".join(stage.argv)
    argv = {s.name: dict(zip(s.argv[::2], s.argv[1::2], strict=False)) for s in stages}
    # both state policies are scored on the same seeds, enough of them for the paired comparison
    assert argv["eval-act-state"]["--episodes"] == argv["eval-jax-state"]["--episodes"]
    assert int(argv["eval-act-state"]["--episodes"]) >= 30
    # the state stages train on the state demos, which carry the object state and no cameras
    state_data = argv["record-state"]["--out"]
    assert argv["train-act-state"]["--dataset"] == argv["train-jax-state"]["--dataset"] == state_data
    assert {"--environment-state", "--no-cameras"} <= set(stages[0].argv)
    # the demonstrations are successful episodes on seeds the sweeps (seeds 0, 1, ...) never reach
    for record in ("record-state", "record"):
        assert int(argv[record]["--seed"]) > int(argv["eval-act-state"]["--episodes"])
        assert argv[record]["--keep"] == "success"


def test_dry_run_prints_commands_and_unknown_stage_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pants.toml").write_text("")
    monkeypatch.chdir(tmp_path)
    assert main(["--dry-run", "--only", "record-state,summary"]) == 0
    printed = capsys.readouterr().out
    assert "libs/datasets:record" in printed and "//:quickstart-summary" in printed
    assert "train-act" not in printed and "--environment-state" in printed
    assert main(["--only", "trian-act"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "trian-act" in error and "train-act" in error


def _report(step: int, successes: int, episodes: int) -> dict:
    return {
        "checkpoint_id": f"{step:06d}",
        "step": step,
        "episodes": episodes,
        "successes": successes,
        "success_rate": successes / episodes,
        "success_ci95": [0.1, 0.9],
        "pick_rate": 0.5,
        "drop_rate": None,
        "outcome_counts": {"success": successes, "never_picked_up": episodes - successes},
    }


def test_summary_puts_both_stacks_in_one_table(tmp_path: Path) -> None:
    for policy, checkpoints in {
        "act": [_report(1000, 3, 10), _report(2000, 7, 10)],
        "jax": [_report(500, 2, 10)],
    }.items():
        sweep = tmp_path / "eval" / policy
        sweep.mkdir(parents=True)
        (sweep / "report.json").write_text(json.dumps({"checkpoints": checkpoints}))
    summary = write_summary(tmp_path).read_text()
    assert "| act | 002000 | 2000 | 7/10 |" in summary
    assert "| jax | 000500 | 500 | 2/10 |" in summary
    assert json.loads((tmp_path / "summary.json").read_text())["best"] == "act:002000"
    assert (tmp_path / "plots" / "success_by_stack.png").stat().st_size > 0


def test_summary_without_sweeps_names_the_stage_to_run(tmp_path: Path) -> None:
    with pytest.raises(SummaryError, match="eval-act"):
        write_summary(tmp_path)


def test_an_interrupted_training_run_is_continued_with_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (stage,) = (s for s in plan_stages(tmp_path / "qs", SIZES["tiny"]) if s.name == "train-act")
    partial = tmp_path / "qs" / "runs" / "act"
    (partial / "checkpoints").mkdir(parents=True)
    (partial / "checkpoints" / "note.txt").write_text("half a run")
    fake_pants = tmp_path / "pants"
    fake_pants.write_text("#!/bin/sh\nexit 0\n")
    fake_pants.chmod(0o755)
    timings = run_stages([stage], tmp_path, str(fake_pants))
    # the train command continues the run in its --out (train --resume), which stays where it is
    assert timings[0][2] == "ran" and stage.argv[-1] == "--resume"
    assert (partial / "checkpoints" / "note.txt").read_text() == "half a run"
    assert f"continuing the unfinished {partial}" in capsys.readouterr().out


FAKE_PANTS = """#!/usr/bin/env python3
# Stands in for ./pants: makes the finished-marker each stage's real command would make.
import pathlib, sys
argv = sys.argv[sys.argv.index("--") + 1 :]
target = sys.argv[sys.argv.index("run") + 1]
out = pathlib.Path(argv[argv.index("--out") + 1])
if target == "libs/datasets:record":
    (out / "meta").mkdir(parents=True, exist_ok=True)
    (out / "meta" / "info.json").write_text(argv[argv.index("--episodes") + 1])
elif target.endswith(":train"):
    (out / "checkpoints" / f"{int(argv[argv.index('--steps') + 1]):06d}").mkdir(parents=True)
else:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text("{}")
"""


def _fake_pants(tmp_path: Path) -> str:
    fake = tmp_path / "fake-pants"
    fake.write_text(FAKE_PANTS)
    fake.chmod(0o755)
    return str(fake)


def _state_stages(out: Path, size: str) -> list:
    return [s for s in plan_stages(out, SIZES[size]) if s.name in ("record-state", "train-act-state")]


def test_a_finished_stage_of_the_same_command_is_skipped(tmp_path: Path) -> None:
    pants = _fake_pants(tmp_path)
    stages = _state_stages(tmp_path / "qs", "tiny")
    assert [how for _, _, how in run_stages(stages, tmp_path, pants)] == ["ran", "ran"]
    assert [how for _, _, how in run_stages(stages, tmp_path, pants)] == ["skipped", "skipped"]


def test_a_smaller_run_in_the_same_folder_is_set_aside_not_trained_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # `--size tiny` and then the default size into one --out: before stamps, the 2-demo dataset counted
    # as recorded and the default run trained on it.
    pants = _fake_pants(tmp_path)
    out = tmp_path / "qs"
    run_stages(_state_stages(out, "tiny"), tmp_path, pants)
    capsys.readouterr()
    timings = run_stages(_state_stages(out, "default"), tmp_path, pants)
    assert [how for _, _, how in timings] == ["ran", "ran"]
    printed = capsys.readouterr().out
    assert "made with `--episodes 2` where this run asks for `--episodes 200`" in printed
    assert (out / "data_state" / "meta" / "info.json").read_text() == "200"
    # the tiny outputs are kept beside, with the stamp saying what made them
    assert (out / "data_state.stale-1" / "meta" / "info.json").read_text() == "2"
    assert (out / ".data_state.stale-1.stage.json").exists()
    assert (out / "runs" / "act-state.stale-1" / "checkpoints" / "000004").is_dir()


def test_a_stage_whose_input_was_made_again_runs_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pants = _fake_pants(tmp_path)
    record, train = _state_stages(tmp_path / "qs", "tiny")
    run_stages([record, train], tmp_path, pants)
    shutil.rmtree(record.output)  # the user deletes the demonstrations to record them again
    capsys.readouterr()
    assert [how for _, _, how in run_stages([record, train], tmp_path, pants)] == ["ran", "ran"]
    assert f"its input {record.output} was made again since" in capsys.readouterr().out


def test_an_unfinished_recording_is_continued_and_a_legacy_finished_one_redone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pants = _fake_pants(tmp_path)
    record, _ = _state_stages(tmp_path / "qs", "tiny")
    (record.output / "data").mkdir(parents=True)  # half a recording, from before stamps existed
    run_stages([record], tmp_path, pants)
    assert "continuing the unfinished" in capsys.readouterr().out
    assert (record.output / "data").is_dir()
    # a finished output that nothing records the making of may be another size's: made again
    (tmp_path / "qs" / ".data_state.stage.json").unlink()
    assert run_stages([record], tmp_path, pants)[0][2] == "ran"
    assert "nothing records which command made it" in capsys.readouterr().out
