"""``sweep --perturbations``: arms declared in the scene run on the control's seeds, and the report gives
each arm's paired difference from the control with its interval."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from libs.evaluation.results.episode_record import RECORD_FIELDS
from libs.evaluation.results.store import STORE_FILE_NAME, ResultsStore
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
    with ResultsStore(out / STORE_FILE_NAME) as store:  # the arm is a field of each stored episode's key
        keys = store.done_keys()
    assert keys == {("scripted", arm, seed) for arm in ("", "shaky", "big_block") for seed in range(EPISODES)}


def rewrite_store_the_old_way(path: Path) -> None:
    """The store as sweeps wrote it before the arm had a column: an arm's episodes under ``<id>+<arm>``,
    keyed by (checkpoint_id, seed)."""
    names = [name for name in RECORD_FIELDS if name != "arm"]
    joined = "CASE WHEN arm = '' THEN checkpoint_id ELSE checkpoint_id || '+' || arm END"
    selected = ", ".join(joined if name == "checkpoint_id" else name for name in names)
    connection = sqlite3.connect(path)
    with connection:
        connection.execute(f"CREATE TABLE old ({', '.join(names)}, PRIMARY KEY (checkpoint_id, seed))")
        connection.execute(f"INSERT INTO old SELECT {selected} FROM episodes")
        connection.execute("DROP TABLE episodes")
        connection.execute("ALTER TABLE old RENAME TO episodes")
        assert connection.execute("SELECT COUNT(*) FROM episodes WHERE checkpoint_id LIKE '%+%'").fetchone()[
            0
        ]
    connection.close()


def test_a_sweep_stored_with_old_arm_ids_resumes_without_playing_a_stored_episode(tmp_path: Path) -> None:
    scene = scene_with_arms(tmp_path)
    out = tmp_path / "out"
    evaluate(config(scene), out)
    report = json.loads((out / "report.json").read_text())
    rewrite_store_the_old_way(out / STORE_FILE_NAME)
    again = evaluate(config(scene), out)
    assert again.ran == 0 and again.skipped == 3 * EPISODES
    assert json.loads((out / "report.json").read_text())["perturbations"] == report["perturbations"]
    # A killed sweep's old store: the missing episodes, and only those, are played.
    connection = sqlite3.connect(out / STORE_FILE_NAME)
    with connection:
        connection.execute("DELETE FROM episodes WHERE arm = 'shaky' AND seed >= 2")
        connection.execute("DELETE FROM episodes WHERE arm = '' AND seed = 3")
    connection.close()
    rewrite_store_the_old_way(out / STORE_FILE_NAME)
    played: list[tuple[str, str, int]] = []
    resumed = evaluate(config(scene), out, on_record=lambda record: played.append(record.key))
    assert sorted(played) == [("scripted", "", 3), ("scripted", "shaky", 2), ("scripted", "shaky", 3)]
    assert (
        resumed.ran == 3
        and json.loads((out / "report.json").read_text())["perturbations"] == report["perturbations"]
    )


def test_arms_need_a_scene_that_declares_them(tmp_path: Path) -> None:
    with pytest.raises(SweepError, match="needs --scene"):
        evaluate(config(None), tmp_path / "a")
    with pytest.raises(SceneConfigError, match="unknown perturbation 'fog'"):
        evaluate(config(scene_with_arms(tmp_path), perturbations=("fog",)), tmp_path / "b")


def test_each_arm_gets_its_own_whisker_episodes_shown_beside_its_episodes(tmp_path: Path) -> None:
    from libs.report_html.folder import load_sweep

    out = tmp_path / "out"
    arms = (Perturbation("shaky", action_noise_deg=8.0),)
    scene = str(SceneConfig(perturbations=arms).save(tmp_path / "scene.json"))
    evaluate(config(scene, episodes=1, whiskers=1, env=EnvSettings(scene_path=scene, max_steps=30)), out)
    groups = json.loads((out / "report.json").read_text())["whisker_diagnostics"]["checkpoints"]
    assert {name: (g["checkpoint_id"], g["arm"]) for name, g in groups.items()} == {
        "scripted": ("scripted", ""),
        "scripted under shaky": ("scripted", "shaky"),
    }
    assert (out / "whiskers" / "scripted" / "shaky" / "seed_0").is_dir()
    shown = {(e.checkpoint, e.arm): e.files for e in load_sweep(out).episodes}
    assert shown[("scripted", "shaky")]["video"].startswith("whiskers/scripted/shaky/seed_0/")
    assert shown[("scripted", "")]["video"].startswith("whiskers/scripted/seed_0/")


def test_a_resume_with_other_arms_is_refused_before_the_folder_is_written(tmp_path: Path) -> None:
    from libs.evaluation.results.store import ResultsStoreError

    scene = scene_with_arms(tmp_path)
    out = tmp_path / "out"
    evaluate(config(scene, episodes=1), out, argv=["sweep", "--perturbations", "all"])
    written = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    with pytest.raises(ResultsStoreError, match="holds a sweep with other settings"):
        evaluate(
            config(scene, episodes=1, perturbations=("shaky",)),
            out,
            argv=["sweep", "--perturbations", "shaky"],
        )
    assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == written
