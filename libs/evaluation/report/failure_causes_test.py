from __future__ import annotations

import json
from pathlib import Path

from libs.evaluation.fixtures import record
from libs.evaluation.play.evaluated_episode import evaluate_episode
from libs.evaluation.report.failure_causes import checkpoint_causes, failure_section
from libs.evaluation.report.sweep_report import write_report
from libs.evaluation.results.episode_record import RecordLabel
from libs.sim.env import SO101PickPlaceEnv
from libs.sim.faulty_expert import FaultyExpert


def test_a_failed_episode_record_names_its_first_decisive_failure() -> None:
    env = SO101PickPlaceEnv(render=False, max_steps=50)
    result = evaluate_episode(FaultyExpert("stall"), env, 0, label=RecordLabel("000100"))
    assert result.record.outcome == "never_picked_up"
    assert result.record.failure == "stalls"
    assert result.record.failure_value >= 1.5
    assert result.record.failure_detail.startswith("stalls at 1.5 s (step 45): no progress for ")


def failed(checkpoint: str, seed: int, kind: str, value: float, detail: str):
    return record(
        checkpoint,
        seed,
        "never_picked_up",
        picked=False,
        failure=kind,
        failure_value=value,
        failure_detail=f"{kind} at 2.0 s (step 60): {detail}",
    )


def test_the_report_answers_why_zero_percent_in_words_and_numbers(tmp_path: Path) -> None:
    records = [
        failed("000100", seed, "closes on air", 0.015 + 0.001 * seed, "shut beside it") for seed in range(3)
    ]
    records.append(failed("000100", 3, "never descends", 0.05, "hovers 5.0 cm above"))
    records += [record("000200", seed, "success") for seed in range(4)]
    causes = checkpoint_causes(records[:4])
    assert causes["sentence"] == (
        "4 of 4 episodes failed: closes on air 3 (median 1.6 cm from the block), "
        "never descends 1 (median 5.0 cm above the block)"
    )
    write_report(records, tmp_path, {"policy": "x", "episodes": 4}, sections=[failure_section(records)])
    markdown = (tmp_path / "report.md").read_text()
    assert "## Why episodes failed" in markdown
    assert "- **000100**: 4 of 4 episodes failed: closes on air 3" in markdown
    assert (
        "  - 000100 seed 3 (never_picked_up): never descends at 2.0 s (step 60): hovers 5.0 cm above"
        in markdown
    )
    data = json.loads((tmp_path / "report.json").read_text())["failure_causes"]
    assert data["000100"]["causes"][0] == {
        "kind": "closes on air",
        "episodes": 3,
        "median": 0.016,
        "unit": "m",
    }
    assert data["000200"]["failed"] == 0


def test_no_section_when_nothing_failed_for_a_named_reason() -> None:
    assert failure_section([record("000100", 0, "success")]) is None
