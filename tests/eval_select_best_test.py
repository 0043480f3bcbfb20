"""``sweep --select-best``: three checkpoints of a test backend (the scripted expert and two degraded copies)
on shared seeds in rounds; the sweep names the expert long before the fixed design's episodes, says when and
why each other checkpoint left, resumes a killed sweep to the same selection, and bad combinations are one
line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from libs.evaluation.plan.select_best import SelectBest
from libs.evaluation.results.store import STORE_FILE_NAME, ResultsStore
from libs.evaluation.sweep import EnvSettings, SweepConfig, evaluate
from libs.policy_api.checkpoint_folders import FoundCheckpoint
from libs.policy_api.registry import register_backend
from libs.sim.perturbations import Perturbation
from libs.sim.scene_config import SceneConfig
from libs.sim.scripted_backend import load_policy
from services.eval import sweep as sweep_cli

BUDGET = 40
#: Short episodes keep the test quick: the expert places the block in ~150 control steps.
MAX_STEPS = 200
#: The test backend's "run": checkpoint id -> what the scripted backend loads.
CHECKPOINTS = {"000001": "noise=12", "000002": "joint", "000003": "noise=6"}


def find_checkpoints(path: Path) -> list[FoundCheckpoint]:
    return [FoundCheckpoint(name, Path(argument), int(name)) for name, argument in CHECKPOINTS.items()]


register_backend("test_select", load_policy, find_checkpoints=find_checkpoints)


def config(**changes) -> SweepConfig:
    values = dict(
        policy="test_select:run",
        env=EnvSettings(max_steps=MAX_STEPS),
        serial=True,
        progress=False,
        select_best=SelectBest(max_episodes=BUDGET, round_episodes=2),
    )
    values.update(changes)
    return SweepConfig(**values)


class Killed(Exception):
    """Stands in for a kill between two stored episodes."""


def test_selects_the_expert_early_and_resumes_a_killed_sweep_to_the_same_answer(tmp_path: Path) -> None:
    result = evaluate(config(), tmp_path / "whole", argv=["test"])
    selection = result.decision
    assert selection["question"] == "select_best" and selection["decided"]
    assert selection["chosen"] == "000002"
    assert selection["episodes_run"] == result.ran < 3 * BUDGET
    markdown = (tmp_path / "whole" / "report.md").read_text()
    assert "## Best-checkpoint selection" in markdown and "000002 is" in markdown
    assert f"against {3 * BUDGET} for the fixed design" in markdown
    data = json.loads((tmp_path / "whole" / "report.json").read_text())
    assert data["select_best"]["chosen"] == "000002"

    stored: list = []

    def kill_after_five(record) -> None:
        stored.append(record)
        if len(stored) == 5:
            raise Killed

    with pytest.raises(Killed):
        evaluate(config(), tmp_path / "killed", argv=["test"], on_record=kill_after_five)
    resumed = evaluate(config(), tmp_path / "killed", argv=["test"])
    # No episode played twice; the resumed rounds start where the kill left them, so the last round may
    # reach a little further than the uninterrupted sweep's (at most one round: 2 seeds × 3 checkpoints).
    assert resumed.skipped == 5 and abs(resumed.ran + 5 - result.ran) <= 6
    for key in ("verdict", "chosen", "walked", "drops"):
        assert resumed.decision[key] == selection[key]


def test_perturbation_arms_ride_along_on_the_seeds_of_their_checkpoint(tmp_path: Path) -> None:
    """--select-best with --perturbations: each checkpoint's arm plays exactly the seeds its checkpoint
    played (a dropped checkpoint's arm stops with it), and the selection is the one made without arms."""
    scene = str(
        SceneConfig(perturbations=(Perturbation("shaky", action_noise_deg=8.0),)).save(tmp_path / "s.json")
    )
    env = EnvSettings(scene_path=scene, max_steps=MAX_STEPS)
    plain = evaluate(config(env=env), tmp_path / "plain", argv=["test"])
    result = evaluate(config(env=env, perturbations=("shaky",)), tmp_path / "arms", argv=["test"])
    for key in ("verdict", "chosen", "walked", "drops"):
        assert result.decision[key] == plain.decision[key]
    with ResultsStore(tmp_path / "arms" / STORE_FILE_NAME) as store:
        records = store.records()
    seeds: dict[tuple[str, str], set[int]] = {}
    for record in records:
        seeds.setdefault((record.checkpoint_id, record.arm), set()).add(record.seed)
    assert {arm for _, arm in seeds} == {"", "shaky"}
    for checkpoint in CHECKPOINTS:
        assert seeds[(checkpoint, "shaky")] == seeds[(checkpoint, "")]
    assert result.decision["arm_episodes"] == sum(record.arm == "shaky" for record in records) > 0
    rows = json.loads((tmp_path / "arms" / "report.json").read_text())["perturbations"]
    assert {row["checkpoint_id"] for row in rows} == set(CHECKPOINTS)


def test_select_best_options_are_checked_in_one_line(tmp_path: Path, capsys) -> None:
    out = str(tmp_path / "c")
    assert sweep_cli.main(["--policy", "scripted", "--out", out, "--select-best"]) == 2
    assert "needs --max-episodes" in capsys.readouterr().err
    one = ["--policy", "scripted", "--out", out, "--select-best", "--max-episodes", "5"]
    assert sweep_cli.main(one) == 2
    assert "several checkpoints" in capsys.readouterr().err
    both = [*one, "--compare-to", "scripted:noise=6", "--until-decided"]
    assert sweep_cli.main(both) == 2
    assert "pick one" in capsys.readouterr().err
    assert sweep_cli.main([*one, "--compare-to", "scripted:noise=6", "--epsilon", "0"]) == 2
    assert "--epsilon" in capsys.readouterr().err
