"""The learning-curve driver: its plan, its resumability and its outputs (the cells' training is the
users' own commands, tested where they live)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import learning_curves
from benchmarks.learning_curves import RECIPES, cell_stages, main, wilson_interval


def test_dry_run_prints_every_stage_as_a_pants_command(tmp_path: Path, capsys, monkeypatch) -> None:
    (tmp_path / "pants.toml").write_text("")  # the driver runs from a checkout's root
    monkeypatch.chdir(tmp_path)
    argv = ["--out", str(tmp_path), "--policies", "act-state,jax-state", "--demos", "25,50", "--dry-run"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    # One pool for both state recipes; per cell: subset, train, evaluate.
    assert printed.count("libs/datasets:record") == 1 and "--environment-state" in printed
    assert printed.count("libs/datasets:convert -- filter") == 4
    assert printed.count("backends/torch_lerobot:train") == 2
    assert printed.count("backends/jax_openpi:train") == 2
    assert "--episodes " + ",".join(str(index) for index in range(25)) + "\n" in printed
    assert printed.count("services/eval:sweep-torch_lerobot -- --policy torch_lerobot:") == 2


def test_unknown_recipe_is_one_line(tmp_path: Path, capsys) -> None:
    assert main(["--out", str(tmp_path), "--policies", "act-stat", "--dry-run"]) == 2
    assert "unknown policy recipe 'act-stat'" in capsys.readouterr().err


def test_a_finished_cell_is_not_redone(tmp_path: Path, monkeypatch, capsys) -> None:
    (tmp_path / "pants.toml").write_text("")
    monkeypatch.chdir(tmp_path)
    ran: list[str] = []
    def record_names(stages, *_):
        ran.extend(stage.name for stage in stages)
        return []

    monkeypatch.setattr(learning_curves, "run_stages", record_names)
    (tmp_path / "data" / "state-pool" / "meta").mkdir(parents=True)
    cell = {
        "policy": "act-state", "demos": 25, "episodes": 100, "successes": 91, "success_rate": 0.91,
        "wilson95": list(wilson_interval(91, 100)), "outcomes": {"success": 91, "timeout": 9},
        "train_seconds": 540.0, "train_args": [], "record_args": [],
    }  # fmt: skip
    (tmp_path / "cells").mkdir()
    (tmp_path / "cells" / "act-state-25.json").write_text(json.dumps(cell))
    assert main(["--out", str(tmp_path), "--policies", "act-state", "--demos", "25"]) == 0
    assert not [name for name in ran if name.endswith("-25")]
    table = (tmp_path / "learning_curves.md").read_text()
    assert table.count("| act-state | 25 | 91/100 (91%) | 84–95% |") == 1
    assert (tmp_path / "learning_curves.png").stat().st_size > 10_000


def test_wilson_interval_matches_the_closed_form() -> None:
    low, high = wilson_interval(90, 100)
    assert low == pytest.approx(0.8256, abs=1e-3) and high == pytest.approx(0.9448, abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_cell_stages_train_into_a_fresh_run_and_evaluate_its_last_checkpoint(tmp_path: Path) -> None:
    subset, train, evaluate = cell_stages(tmp_path, RECIPES["diffusion-state"], 50, eval_seeds=100, workers=2)
    assert train.fresh_dir == tmp_path / "runs" / "diffusion-state-50"
    assert f"torch_lerobot:{train.done_marker}" in evaluate.argv
    assert evaluate.argv[-2:] == ("--workers", "2") and "100" in evaluate.argv
