"""--grid: every checkpoint is scored on the same regular grid of block positions, and the report draws a
spatial success map with the training data's block positions overlaid."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from libs.evaluation.executor import EnvSettings
from libs.evaluation.store import STORE_FILE_NAME, ResultsStore
from libs.evaluation.sweep import SweepConfig, evaluate, grid_points
from libs.sim.scene_config import SceneConfig
from services.eval import sweep as sweep_cli


def test_grid_sweep_places_blocks_on_the_grid_and_maps_outcomes(tmp_path: Path) -> None:
    training = tmp_path / "dataset"
    (training / "meta").mkdir(parents=True)
    (training / "meta" / "block_positions.json").write_text(json.dumps([[0.2, 0.0], [0.17, -0.05]]))
    config = SweepConfig(
        policy="scripted",
        grid=(2, 2),
        env=EnvSettings(max_steps=40),
        serial=True,
        progress=False,
        training_data=str(training),
    )
    result = evaluate(config, tmp_path / "out", argv=["grid"])
    with ResultsStore(tmp_path / "out" / STORE_FILE_NAME) as store:
        records = store.records()
    expected = dict(grid_points((2, 2), SceneConfig().block_region_xy))
    assert len(records) == 4
    for record in records:
        x, y = expected[(record.grid_col, record.grid_row)]
        assert np.hypot(record.block_x - x, record.block_y - y) < 0.005
    assert (tmp_path / "out" / "plots" / "grid_scripted.png") in result.report.plot_paths
    # The scene each checkpoint ran in is saved with the evaluation (cameras, FOV, sizes: comparable later).
    (scene_file,) = (tmp_path / "out" / "scenes").glob("*.json")
    assert json.loads(scene_file.read_text()) == json.loads(json.dumps(SceneConfig().to_dict()))


def test_grid_cli_prints_the_report(tmp_path: Path, capsys) -> None:
    code = sweep_cli.main(
        [
            "--policy", "scripted", "--grid", "1x2", "--max-steps", "20", "--serial", "--no-progress",
            "--out", str(tmp_path),
        ]
    )
    assert code == 0
    assert f"report: {tmp_path / 'report.md'}" in capsys.readouterr().out
    assert "1×2 grid of block positions" in (tmp_path / "report.md").read_text()
