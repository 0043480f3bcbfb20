"""The quickstart's plan and summary: what a newcomer's first command does and what it prints."""

import json
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


def test_an_interrupted_training_run_is_moved_aside_not_lost(tmp_path: Path) -> None:
    (stage,) = (s for s in plan_stages(tmp_path / "qs", SIZES["tiny"]) if s.name == "train-act")
    partial = tmp_path / "qs" / "runs" / "act"
    (partial / "checkpoints").mkdir(parents=True)
    (partial / "checkpoints" / "note.txt").write_text("half a run")
    fake_pants = tmp_path / "pants"
    fake_pants.write_text("#!/bin/sh\nexit 0\n")
    fake_pants.chmod(0o755)
    timings = run_stages([stage], tmp_path, str(fake_pants))
    assert timings[0][2] == "ran" and not partial.exists()
    kept = tmp_path / "qs" / "runs" / "act.interrupted-1" / "checkpoints" / "note.txt"
    assert kept.read_text() == "half a run"
