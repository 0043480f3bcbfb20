from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from libs.evaluation.fixtures import record
from libs.evaluation.plan.grid import GridSpec
from libs.evaluation.report.sweep_report import write_report
from libs.evaluation.results.provenance import write_provenance
from libs.evaluation.sweep import grid_points


def test_report_names_best_and_compares_on_shared_seeds(tmp_path: Path) -> None:
    records = [record("045000", seed, "success") for seed in range(10)]
    outcomes = ["success"] * 8 + ["dropped_during_transport"] * 2
    records += [record("050000", seed, outcome) for seed, outcome in enumerate(outcomes)]
    records += [record("040000", seed, "never_picked_up", picked=False) for seed in range(10)]
    report = write_report(records, tmp_path, {"policy": "torch_lerobot:runs/act", "episodes": 10})
    assert [s.checkpoint_id for s in report.summaries] == ["040000", "045000", "050000"]
    assert report.best.checkpoint_id == "045000"
    assert report.comparison.runner_up == "050000" and not report.comparison.significant
    markdown = (tmp_path / "report.md").read_text()
    assert "**Best checkpoint: 045000** — 10/10 successes (100%, 95% interval 72%–100%)" in markdown
    assert "do not show that 045000 is better than 050000" in markdown
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["best"] == "045000" and data["comparison"]["p_value"] == 0.5
    assert (tmp_path / "plots" / "success_vs_step.png").stat().st_size > 0
    assert (tmp_path / "plots" / "outcomes.png").stat().st_size > 0


def test_a_checkpoint_stopped_on_every_episode_is_never_named_best(tmp_path: Path) -> None:
    records = [record("000200", seed, "contract_violation", picked=False) for seed in range(4)]
    records += [record("000100", seed, "never_picked_up", picked=False) for seed in range(4)]
    report = write_report(records, tmp_path, {"policy": "x"})
    assert report.best.checkpoint_id == "000100" and report.comparison is None
    only_violations = write_report(records[:4], tmp_path / "only", {"policy": "x"})
    assert only_violations.best is None
    assert "**No best checkpoint:**" in (tmp_path / "only" / "report.md").read_text()
    assert json.loads((tmp_path / "only" / "report.json").read_text())["best"] is None


def test_grid_report_draws_a_spatial_map(tmp_path: Path) -> None:
    region = ((0.15, 0.25), (-0.12, 0.12))
    records = []
    for index, ((column, row), (x, y)) in enumerate(grid_points((3, 2), region)):
        outcome = "success" if column < 2 else "never_picked_up"
        records.append(
            replace(record("000100", index, outcome), block_x=x, block_y=y, grid_col=column, grid_row=row)
        )
    report = write_report(
        records,
        tmp_path,
        {"policy": "x", "grid": [3, 2]},
        GridSpec(3, 2, region),
        {"000100": [[0.2, 0.0], [0.18, 0.05]]},
    )
    assert tmp_path / "plots" / "grid_000100.png" in report.plot_paths
    assert "3×2 grid of block positions" in (tmp_path / "report.md").read_text()


def test_grid_points_span_the_region_corners_included() -> None:
    points = grid_points((3, 2), ((0.1, 0.3), (-0.1, 0.1)))
    assert points[0] == ((0, 0), (0.1, -0.1)) and points[-1] == ((2, 1), (0.3, 0.1))
    assert len(points) == 6


def test_provenance_records_command_and_versions(tmp_path: Path) -> None:
    write_provenance(tmp_path, ["sweep", "--policy", "scripted", "--out", "a b"])
    assert "sweep --policy scripted --out 'a b'" in (tmp_path / "command.txt").read_text()
    versions = json.loads((tmp_path / "versions.json").read_text())
    assert "numpy" in versions and "python" in versions


def test_two_checkpoints_at_zero_percent_are_still_ordered_by_progress(tmp_path: Path) -> None:
    records = [record("200", seed, "dropped_during_transport", progress=0.6) for seed in range(30)]
    records += [record("100", seed, "never_picked_up", picked=False, progress=0.2) for seed in range(30)]
    report = write_report(records, tmp_path, {"policy": "x", "episodes": 30})
    assert not report.comparison.significant  # 0/30 vs 0/30
    assert report.progress_comparison is not None and report.progress_comparison.verdict == "first_better"
    markdown = (tmp_path / "report.md").read_text()
    assert "## Progress" in markdown and "| 200 | 0 | 0 | 0 | 30 | 0 | 0 | 0.60" in markdown
    assert "**On progress instead of success:**" in markdown
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["progress_comparison"]["verdict"] == "first_better"
    assert data["checkpoints"][1]["progress_stage_counts"]["lifted"] == 30
