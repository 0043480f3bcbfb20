"""--grid: every checkpoint is scored on the same regular grid of block positions, and the report draws a
spatial success map with the training data's block positions overlaid."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from libs.evaluation.results.store import STORE_FILE_NAME, ResultsStore
from libs.evaluation.sweep import EnvSettings, SweepConfig, evaluate, grid_points
from libs.policy_api.card import CheckpointCard
from libs.policy_api.registry import make_policy, register_backend
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


def test_the_grid_covers_the_block_region_of_the_checkpoints_training_scene(tmp_path: Path) -> None:
    # Trained where the block lies elsewhere than in the bench scene: the grid covers that scene's region
    # (it used to cover the default scene's even when the checkpoint was evaluated in its own).
    region = ((0.21, 0.25), (0.02, 0.1))
    trained_in = SceneConfig(block_region_xy=region).to_dict()
    card = CheckpointCard(scene=trained_in, block_positions=[[0.22, 0.05]])
    register_backend(
        "test_grid_card", lambda argument: make_policy("scripted"), read_card=lambda argument: card
    )
    config = SweepConfig(policy="test_grid_card", grid=(2, 1), env=EnvSettings(max_steps=2), serial=True)
    result = evaluate(replace(config, progress=False), tmp_path / "out", argv=["grid"])
    with ResultsStore(tmp_path / "out" / STORE_FILE_NAME) as store:
        records = store.records()
    expected = dict(grid_points((2, 1), region))
    assert sorted((record.grid_col, record.grid_row) for record in records) == sorted(expected)
    for record in records:
        x, y = expected[(record.grid_col, record.grid_row)]
        assert np.hypot(record.block_x - x, record.block_y - y) < 0.005
    # The saved scene and the map's training positions come from the same card.
    (scene_file,) = (tmp_path / "out" / "scenes").glob("*.json")
    assert json.loads(scene_file.read_text()) == json.loads(json.dumps(trained_in))
    assert result.report.plot_paths


def test_grid_cli_prints_the_report(tmp_path: Path, capsys) -> None:
    code = sweep_cli.main(
        [
            "--policy",
            "scripted",
            "--grid",
            "1x2",
            "--max-steps",
            "20",
            "--serial",
            "--no-progress",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    assert f"report: {tmp_path / 'report.md'}" in capsys.readouterr().out
    assert "1×2 grid of block positions" in (tmp_path / "report.md").read_text()
