from __future__ import annotations

import json

from libs.evaluation.fixtures import record
from libs.evaluation.results.store import STORE_FILE_NAME, ResultsStore
from services.eval.plan import main


def test_plan_from_rates_prints_both_designs(capsys) -> None:
    assert main(["--rates", "0.9", "0.5", "--power", "0.8", "--simulations", "500"]) == 0
    out = capsys.readouterr().out
    assert "fixed n (exact test)" in out and "sequential (--until-decided)" in out
    assert "--until-decided --alpha 0.05 --max-episodes" in out


def test_plan_from_a_pilot_store(tmp_path, capsys) -> None:
    with ResultsStore(tmp_path / STORE_FILE_NAME) as store:
        for seed in range(12):
            store.append(record("200", seed, "success" if seed < 10 else "never_picked_up"))
            store.append(record("100", seed, "success" if seed < 5 else "never_picked_up"))
    assert main(["--pilot", str(tmp_path), "--power", "0.8", "--simulations", "500", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["question"] == "paired" and plan["fixed_episodes"] > 0
    assert "200" in plan["description"] or plan["description"]


def test_plan_without_a_difference_is_one_line(tmp_path, capsys) -> None:
    assert main(["--rates", "0.7", "0.7"]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert main(["--pilot", str(tmp_path)]) == 2
    assert "--out folder" in capsys.readouterr().err
