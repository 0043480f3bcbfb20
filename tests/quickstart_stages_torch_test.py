"""The quickstart's torch path end to end at toy sizes: record -> train ACT -> Ray sweep with whiskers.

The stages are the exact ones `./pants run //:quickstart` runs (same argv), called in-process because the
torch stack lives in this resolve only; quickstart_stages_jax_test.py covers the JAX path and the summary.
"""

import json
from pathlib import Path

from services.quickstart.quickstart import SIZES, plan_stages, run_stage_in_process


def test_record_train_act_and_sweep(tmp_path: Path) -> None:
    stages = {stage.name: stage for stage in plan_stages(tmp_path, SIZES["tiny"], workers=1)}
    for name in ("record", "train-act", "eval-act"):
        run_stage_in_process(stages[name])
        assert stages[name].done_marker.exists(), f"stage {name} did not produce {stages[name].done_marker}"

    report = json.loads((tmp_path / "eval" / "act" / "report.json").read_text())
    steps = sorted(checkpoint["step"] for checkpoint in report["checkpoints"])
    assert steps == [2, 4], "every saved ACT checkpoint is swept"
    for checkpoint in report["checkpoints"]:
        assert checkpoint["episodes"] == SIZES["tiny"].eval_episodes
        assert sum(checkpoint["outcome_counts"].values()) == checkpoint["episodes"]
    assert list((tmp_path / "eval" / "act" / "whiskers").rglob("*.mp4")), "a whisker video is recorded"
