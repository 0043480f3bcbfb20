"""What the pages compute from a folder's files, without a browser: the same statistics and folder names as
the evaluation code, a store read without taking its lock, the plan deciding which stored rows are reported,
and the command that replays an episode."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from types import SimpleNamespace

from libs.evaluation.fixtures import record, write_store_with_old_arm_ids
from libs.evaluation.plan.checkpoints import file_safe_id as evaluation_file_safe_id
from libs.evaluation.plan.stop_when_decided import UntilDecided
from libs.evaluation.results.store import STORE_FILE_NAME, ResultsStore
from libs.evaluation.stats import metrics
from libs.evaluation.sweep import EnvSettings, SweepConfig, evaluate
from libs.report_html import stats
from libs.report_html.folder import STORE_FILE, file_safe_id, load_sweep, read_store
from libs.report_html.plan import read_sweep_plan, write_sweep_plan
from libs.report_html.sweep_page import reproduce_command, write_report_html
from services.report.fixtures import FAULTY, MAX_STEPS


def test_the_pages_statistics_and_names_are_the_evaluation_codes() -> None:
    for successes, trials in [(0, 0), (0, 5), (3, 10), (10, 10), (47, 100)]:
        assert stats.wilson_interval(successes, trials) == metrics.wilson_interval(successes, trials)
    for first, second in [(0, 0), (3, 0), (5, 2), (10, 11)]:
        assert stats.exact_mcnemar_p(first, second) == metrics.exact_mcnemar_p(first, second)
    for name in ["scripted", "torch_lerobot:/runs/act", "004000", "scripted:fault=hover", "a+b c"]:
        assert file_safe_id(name) == evaluation_file_safe_id(name)
    assert STORE_FILE == STORE_FILE_NAME


def test_the_store_is_read_while_a_writer_holds_its_lock(tmp_path: Path) -> None:
    path = tmp_path / STORE_FILE_NAME
    with ResultsStore(path) as store:
        store.append(record("000100", 0, "success"))
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")  # a reader through SQLite would now fail: "database is locked"
    try:
        rows, _ = read_store(path)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert [(row["checkpoint_id"], row["seed"], row["outcome"]) for row in rows] == [("000100", 0, "success")]
    assert sorted(p.name for p in tmp_path.iterdir()) == [STORE_FILE_NAME]  # nothing written beside it


def _task(checkpoint_id: str, uri: str, seed: int, step: int | None = None, arm: str = ""):
    target = SimpleNamespace(checkpoint_id=checkpoint_id, policy_uri=uri, step=step, arm=arm)
    return SimpleNamespace(target=target, arm=arm, seed=seed, grid_cell=None)


def test_the_plan_decides_which_stored_episodes_are_this_sweeps(tmp_path: Path) -> None:
    uri = "torch_lerobot:runs/act/checkpoints/004000"
    tasks = [_task("004000", uri, seed, 4000) for seed in (0, 1)]
    tasks += [_task("004000", uri, seed, 4000, "dim") for seed in (0, 1)]
    write_sweep_plan(tmp_path, tasks)
    plan = read_sweep_plan(tmp_path)
    assert plan is not None and plan.planned_episodes == 4 and plan.arms == ["dim"]
    assert [c.checkpoint_id for c in plan.checkpoints] == ["004000"]
    with ResultsStore(tmp_path / STORE_FILE_NAME) as store:
        for seed in (0, 1, 2):  # seed 2 was stored by an earlier, longer run into the same folder
            store.append(record("004000", seed, "success" if seed else "timeout", failure_detail="slow"))
        store.append(record("004000", 0, "timeout", arm="dim"))
    folder = load_sweep(tmp_path)
    assert [(e.checkpoint, e.seed, e.arm) for e in folder.episodes] == [
        ("004000", 0, ""),
        ("004000", 1, ""),
        ("004000", 0, "dim"),
    ]
    assert not folder.finished and folder.planned_episodes == 4
    command = reproduce_command(folder, folder.episodes[0])
    assert command.startswith(f"./pants run services/eval:sweep-torch_lerobot -- --policy {uri} --seed 0 ")
    assert "--perturbations dim" in reproduce_command(folder, folder.episodes[2])
    html = write_report_html(tmp_path).read_text()
    assert "3 episodes stored of 4 planned" in html and "slow" in html


def test_a_folder_from_before_arms_had_a_column_shows_its_arms_and_is_not_written(tmp_path: Path) -> None:
    store = tmp_path / STORE_FILE_NAME
    write_store_with_old_arm_ids(store, ["dim", "fog"])
    old_plan = {  # plan.json as it was written then: each arm a checkpoint of its own, its control named
        "checkpoints": [
            {"checkpoint_id": "000100", "policy_uri": "scripted", "step": 100, "arm": None, "control": None},
            {
                "checkpoint_id": "000100+dim",
                "policy_uri": "scripted",
                "step": 100,
                "arm": "dim",
                "control": "000100",
            },
        ],
        "seeds": {"000100": [0, 1], "000100+dim": [0, 1]},
        "cells": {},
        "planned_episodes": 4,
    }
    (tmp_path / "plan.json").write_text(json.dumps(old_plan))
    video = "whiskers/000100_dim/seed_0/whiskers_dynamic.mp4"
    old_whiskers = {"checkpoints": {"000100+dim": {"episodes": [{"seed": 0, "files": {"video": video}}]}}}
    (tmp_path / "report.json").write_text(
        json.dumps({"checkpoints": [], "whisker_diagnostics": old_whiskers})
    )
    before = store.read_bytes()
    folder = load_sweep(tmp_path)
    assert folder.plan is not None and folder.plan.arms == ["dim"] and folder.checkpoint_ids == ["000100"]
    assert [(e.checkpoint, e.arm, e.seed) for e in folder.episodes] == [
        ("000100", "", 0),
        ("000100", "", 1),
        ("000100", "dim", 0),
        ("000100", "dim", 1),
    ]
    assert "--perturbations dim" in reproduce_command(folder, folder.episodes[2])
    assert folder.episodes[2].files == {"video": video} and not folder.episodes[0].files
    assert store.read_bytes() == before  # the pages never migrate: the next sweep run does


def test_a_sweep_stopped_by_its_sequential_decision_is_finished_with_its_verdict(tmp_path: Path) -> None:
    config = SweepConfig(
        policy="scripted",
        compare_to=FAULTY,
        env=EnvSettings(max_steps=MAX_STEPS),
        serial=True,
        progress=False,
        until_decided=UntilDecided(max_episodes=20, round_episodes=2),
    )
    result = evaluate(config, tmp_path, argv=["test"])
    assert result.decision is not None and result.decision["verdict"] == "first_better"
    folder = load_sweep(tmp_path)
    assert folder.finished and len(folder.episodes) < folder.planned_episodes == 40  # stopped early
    html = (tmp_path / "report.html").read_text()
    assert "Sequential decision (first_better" in html and "in progress" not in html
