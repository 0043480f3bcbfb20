"""``sweep --perturbations``: arms declared in the scene run on the control's seeds, and the report gives
each arm's paired difference from the control with its interval."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from libs.evaluation.sweep import EnvSettings, SweepConfig, SweepError, evaluate
from libs.sim.perturbations import Perturbation
from libs.sim.scene_config import SceneConfig, SceneConfigError

EPISODES = 4
MAX_STEPS = 200


def scene_with_arms(tmp_path: Path) -> str:
    arms = (Perturbation("shaky", action_noise_deg=8.0), Perturbation("big_block", block_size_scale=1.2))
    return str(SceneConfig(perturbations=arms).save(tmp_path / "scene.json"))


def config(scene: str, **changes) -> SweepConfig:
    values = dict(
        policy="scripted",
        episodes=EPISODES,
        env=EnvSettings(scene_path=scene, max_steps=MAX_STEPS),
        serial=True,
        progress=False,
        perturbations=("all",),
    )
    values.update(changes)
    return SweepConfig(**values)


def test_arms_run_on_the_control_seeds_and_report_paired_differences(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = evaluate(config(scene_with_arms(tmp_path)), out)
    assert result.ran == 3 * EPISODES
    assert [s.checkpoint_id for s in result.report.summaries] == ["scripted"]  # arms have their own section
    data = json.loads((out / "report.json").read_text())
    arms = {row["arm"]: row for row in data["perturbations"]}
    assert set(arms) == {"shaky", "big_block"}
    for row in arms.values():
        assert row["seeds"] == EPISODES and row["control_successes"] == EPISODES
        low, high = row["success_difference_ci95"]
        assert low <= row["success_difference"] <= high
    assert arms["shaky"]["success_difference"] < 0  # 8° of noise on every action costs the expert
    markdown = (out / "report.md").read_text()
    assert "## Perturbation arms" in markdown and "| scripted | shaky | 4 |" in markdown
    saved = json.loads((out / "episodes.sqlite").parent.joinpath("report.json").read_text())["settings"]
    assert saved["perturbations"] == ["all"] and saved["scene"]["perturbations"][0]["name"] == "shaky"


def test_arms_need_a_scene_that_declares_them(tmp_path: Path) -> None:
    with pytest.raises(SweepError, match="needs --scene"):
        evaluate(config(None), tmp_path / "a")
    with pytest.raises(SceneConfigError, match="unknown perturbation 'fog'"):
        evaluate(config(scene_with_arms(tmp_path), perturbations=("fog",)), tmp_path / "b")
