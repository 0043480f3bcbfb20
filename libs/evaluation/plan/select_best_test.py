"""``SelectBestSchedule``: rounds hold only the checkpoints left (and their arms, on matched seeds), a dropped
checkpoint stops, a sweep killed mid-round resumes from the store to the same selection without replaying an
episode, and the report section says when and why each was dropped."""

from __future__ import annotations

from pathlib import Path

import pytest

from libs.evaluation.plan.checkpoints import CheckpointTarget, decide_scene
from libs.evaluation.plan.schedule import SelectBestSchedule, schedule_for
from libs.evaluation.plan.select_best import SelectBest, check_select_best
from libs.evaluation.plan.sweep_plan import SweepPlan, plan_tasks
from libs.evaluation.results.episode_record import EpisodeRecord
from libs.evaluation.results.store import ResultsStore
from libs.evaluation.stats.best_of_k import SelectionError

#: Each checkpoint's success on a seed: "best" always, "half" on even seeds, "worst" never.
SUCCEEDS = {"best": lambda seed: True, "half": lambda seed: seed % 2 == 0, "worst": lambda seed: False}
BUDGET = 60


def make_plan(arms: list[str]) -> SweepPlan:
    scene = decide_scene(None, None)
    targets = []
    for name in SUCCEEDS:
        control = CheckpointTarget(name, f"fake:{name}", None, scene)
        targets.append(control)
        targets.extend(CheckpointTarget(name, f"fake:{name}", None, scene, arm=arm) for arm in arms)
    return SweepPlan(targets, list(SUCCEEDS), arms, plan_tasks(targets, 0, BUDGET, None), None, BUDGET)


def played(checkpoint_id: str, arm: str, seed: int) -> EpisodeRecord:
    outcome = "success" if SUCCEEDS[checkpoint_id](seed) else "timeout"
    return EpisodeRecord(
        checkpoint_id, seed, None, outcome, 100, True, None, 0.0, 0, None, 1, 1.0, 1.0, 1.0, "joint", arm=arm
    )


def play_rounds(
    schedule: SelectBestSchedule, store: ResultsStore, stop_after: int | None = None
) -> list[list]:
    """Plays the schedule's rounds into ``store``; ``stop_after`` episodes in, it stops mid-round (a kill)."""
    rounds, count = [], 0
    for tasks in schedule.rounds(store):
        rounds.append(tasks)
        for task in tasks:
            if stop_after is not None and count == stop_after:
                return rounds
            assert store.append(played(*task.key)), f"{task.key} played twice"
            count += 1
    return rounds


def test_rounds_drop_the_worst_first_and_name_the_best(tmp_path: Path) -> None:
    schedule = schedule_for(make_plan([]), None, serial=False, workers=6, select=SelectBest(BUDGET))
    assert isinstance(schedule, SelectBestSchedule)
    with ResultsStore(tmp_path / "episodes.sqlite") as store:
        rounds = play_rounds(schedule, store)
        records = store.records()
    assert {task.target.checkpoint_id for task in rounds[0]} == set(SUCCEEDS)
    assert len(rounds[0]) == 6  # one episode per worker: 2 seeds for each of 3 checkpoints
    assert schedule.round_size(rounds[0][:1]) == 6  # a resumed first round still starts every worker
    selection = schedule.select(records)
    assert selection.decided and selection.chosen == "best"
    worst = next(drop for drop in selection.drops if drop.checkpoint == "worst")
    assert worst.by == "best" and worst.lower_bound > 0
    worst_seeds = {record.seed for record in records if record.checkpoint_id == "worst"}
    assert max(worst_seeds) < worst.episodes + 2  # it stops with the round it was dropped in
    after = [tasks for tasks in rounds if min(task.seed for task in tasks) >= worst.episodes]
    assert all(task.target.checkpoint_id != "worst" for tasks in after for task in tasks)
    section = schedule.section(records)
    assert section.key == "select_best" and "dropped: best is better" in section.markdown
    assert section.data["fixed_design_episodes"] == 3 * BUDGET
    assert section.data["episodes_run"] == len(records) < 3 * BUDGET
    assert section.data["drop_rounds"]["worst"] >= 1


def test_a_sweep_killed_mid_round_resumes_to_the_same_selection(tmp_path: Path) -> None:
    rule = SelectBest(BUDGET, round_episodes=3)
    whole = schedule_for(make_plan([]), None, serial=False, workers=4, select=rule)
    with ResultsStore(tmp_path / "whole.sqlite") as store:
        play_rounds(whole, store)
        expected = whole.select(store.records())
    for kill_at in (1, 4, 7, 11):
        with ResultsStore(tmp_path / f"killed{kill_at}.sqlite") as store:
            play_rounds(schedule_for(make_plan([]), None, False, 4, rule), store, stop_after=kill_at)
            assert store.count() == kill_at
            resumed = schedule_for(make_plan([]), None, False, 4, rule)
            play_rounds(resumed, store)  # asserts no episode is played twice
            got = resumed.select(store.records())
        assert (got.verdict, got.chosen, got.walked, got.drops) == (
            expected.verdict,
            expected.chosen,
            expected.walked,
            expected.drops,
        )


def test_arms_ride_along_on_matched_seeds_and_stop_with_their_checkpoint(tmp_path: Path) -> None:
    plan = make_plan(["shaky"])
    schedule = schedule_for(plan, None, serial=True, workers=None, select=SelectBest(BUDGET))
    with ResultsStore(tmp_path / "episodes.sqlite") as store:
        play_rounds(schedule, store)
        records = store.records()
    seeds: dict[tuple[str, str], set[int]] = {}
    for record in records:
        seeds.setdefault((record.checkpoint_id, record.arm), set()).add(record.seed)
    for control in SUCCEEDS:
        assert seeds[(control, "shaky")] == seeds[(control, "")]
    assert len(seeds[("worst", "")]) < len(seeds[("best", "")])
    section = schedule.section(records)
    assert section.data["arm_episodes"] == sum(len(seeds[(c, "shaky")]) for c in SUCCEEDS)


def test_bad_selections_are_one_line() -> None:
    with pytest.raises(SelectionError, match="several checkpoints"):
        check_select_best(["only"], grid=False, until_decided=False)
    with pytest.raises(SelectionError, match="pick one"):
        check_select_best(["a", "b"], grid=False, until_decided=True)
    with pytest.raises(SelectionError, match="--grid"):
        check_select_best(["a", "b"], grid=True, until_decided=False)
    with pytest.raises(SelectionError, match="--max-episodes"):
        SelectBest(0)
    with pytest.raises(SelectionError, match="--epsilon"):
        SelectBest(10, epsilon=2.0)
