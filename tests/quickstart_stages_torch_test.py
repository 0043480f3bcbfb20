"""The quickstart's torch paths end to end at toy sizes: record -> train ACT -> Ray sweep with whiskers, for
the state-based ACT and the vision ACT.

The stages are the exact ones `./pants run //:quickstart` runs (same argv), called in-process because the
torch stack lives in this resolve only; quickstart_stages_jax_test.py covers the JAX path and the summary.
"""

import json
from pathlib import Path

from services.quickstart.quickstart import SIZES, plan_stages, run_stage_in_process


def test_record_train_act_and_sweep(tmp_path: Path) -> None:
    stages = {stage.name: stage for stage in plan_stages(tmp_path, SIZES["tiny"], workers=1)}
    for name in ("record-state", "train-act-state", "eval-act-state", "record", "train-act", "eval-act"):
        run_stage_in_process(stages[name])
        assert stages[name].done_marker.exists(), f"stage {name} did not produce {stages[name].done_marker}"

    for sweep, episodes in (
        ("act-state", SIZES["tiny"].state_eval_episodes),
        ("act", SIZES["tiny"].eval_episodes),
    ):
        report = json.loads((tmp_path / "eval" / sweep / "report.json").read_text())
        steps = sorted(checkpoint["step"] for checkpoint in report["checkpoints"])
        assert steps == [2, 4], f"every saved {sweep} checkpoint is swept"
        for checkpoint in report["checkpoints"]:
            assert checkpoint["episodes"] == episodes
            assert sum(checkpoint["outcome_counts"].values()) == checkpoint["episodes"]
        assert list((tmp_path / "eval" / sweep / "whiskers").rglob("*.mp4")), "a whisker video is recorded"
    # the state policy is evaluated in its training scene: the object state, no cameras
    scene = json.loads((tmp_path / "data_state" / "meta" / "scene.json").read_text())
    assert scene.get("environment_state") is True
