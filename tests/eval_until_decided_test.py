"""``sweep --until-decided``: the scripted expert against a deliberately degraded copy of itself stops as soon
as the paired seeds decide, says which is better, and resumes to the same decision; bad combinations of
options are one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from libs.evaluation.plan.stop_when_decided import UntilDecided
from libs.evaluation.results.store import STORE_FILE_NAME, ResultsStore
from libs.evaluation.sweep import EnvSettings, SweepConfig, SweepError, evaluate
from services.eval import sweep as sweep_cli

BUDGET = 30
#: Short episodes keep the test quick: the expert places the block in ~150 control steps.
MAX_STEPS = 200
DEGRADED = "scripted:noise=6"


def config(**changes) -> SweepConfig:
    values = dict(
        policy="scripted",
        compare_to=DEGRADED,
        env=EnvSettings(max_steps=MAX_STEPS),
        serial=True,
        progress=False,
        until_decided=UntilDecided(max_episodes=BUDGET, round_episodes=2),
    )
    values.update(changes)
    return SweepConfig(**values)


def test_expert_vs_degraded_expert_stops_early_and_resumes_to_the_same_decision(tmp_path: Path) -> None:
    result = evaluate(config(), tmp_path, argv=["test"])
    decision = result.decision
    assert decision["verdict"] == "first_better" and decision["first"] == "scripted"
    assert decision["episodes_run"] < BUDGET
    assert decision["episodes_run"] - decision["decided_at_episode"] < 2  # at most the rest of one round
    assert decision["saved_against_budget"] == BUDGET - decision["episodes_run"]
    assert result.ran == 2 * decision["episodes_run"]
    markdown = (tmp_path / "report.md").read_text()
    assert "## Sequential decision" in markdown and "scripted is better than scripted:noise=6" in markdown
    assert "## Progress" in markdown
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["sequential"]["verdict"] == "first_better"
    again = evaluate(config(), tmp_path, argv=["test"])
    assert again.ran == 0 and again.decision["decided_at_episode"] == decision["decided_at_episode"]


def test_until_decided_options_are_checked_in_one_line(tmp_path: Path, capsys) -> None:
    with pytest.raises(SweepError, match="two checkpoints"):
        evaluate(config(compare_to=None), tmp_path / "a")
    with pytest.raises(SweepError, match="drop --grid"):
        evaluate(config(grid=(2, 2)), tmp_path / "b")
    out = str(tmp_path / "c")
    assert sweep_cli.main(["--policy", "scripted", "--out", out, "--until-decided"]) == 2
    assert "needs --max-episodes" in capsys.readouterr().err
    assert sweep_cli.main(["--policy", "scripted", "--out", out, "--max-episodes", "5"]) == 2
    assert "only applies with --until-decided" in capsys.readouterr().err
    args = ["--policy", "scripted", "--out", out, "--until-decided", "--max-episodes", "5", "--alpha", "2"]
    assert sweep_cli.main(args) == 2
    assert "--alpha" in capsys.readouterr().err


def test_perturbation_arms_play_matched_seeds_in_every_round(tmp_path: Path) -> None:
    """--perturbations with --until-decided: each round plays the arm on the same seeds as its checkpoint;
    the decision compares the checkpoints alone and stops as it does without arms."""
    from libs.sim.perturbations import Perturbation
    from libs.sim.scene_config import SceneConfig

    arms = (Perturbation("shaky", action_noise_deg=8.0),)
    scene = str(SceneConfig(perturbations=arms).save(tmp_path / "scene.json"))
    env = EnvSettings(scene_path=scene, max_steps=MAX_STEPS)
    result = evaluate(config(env=env, perturbations=("shaky",)), tmp_path / "out", argv=["test"])
    decision = result.decision
    assert decision["verdict"] == "first_better" and decision["episodes_run"] < BUDGET
    assert result.ran == 4 * decision["episodes_run"]  # two checkpoints and their two arms, seed for seed
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    rows = data["perturbations"]
    assert {row["checkpoint_id"] for row in rows} == {"scripted", DEGRADED}
    assert {row["seeds"] for row in rows} == {decision["episodes_run"]}
    assert [s.checkpoint_id for s in result.report.summaries] == ["scripted", DEGRADED]
    with ResultsStore(tmp_path / "out" / STORE_FILE_NAME) as store:
        keys = store.done_keys()
    seeds: dict[tuple[str, str], set[int]] = {}
    for checkpoint, arm, seed in keys:
        seeds.setdefault((checkpoint, arm), set()).add(seed)
    assert set(seeds) == {(c, arm) for c in ("scripted", DEGRADED) for arm in ("", "shaky")}
    assert len({frozenset(played) for played in seeds.values()}) == 1  # every target on the same seeds
