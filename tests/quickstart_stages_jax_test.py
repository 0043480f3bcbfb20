"""The quickstart's JAX path end to end at toy sizes: state demos -> train -> Ray sweep -> summary.

Same stages and argv as `./pants run //:quickstart`, in-process in the jax_openpi resolve.
"""

import json
from pathlib import Path

from services.quickstart.quickstart import SIZES, plan_stages, run_stage_in_process


def test_record_train_jax_sweep_and_summary(tmp_path: Path) -> None:
    stages = {stage.name: stage for stage in plan_stages(tmp_path, SIZES["tiny"], workers=1)}
    for name in ("record-state", "train-jax-state", "eval-jax-state", "summary"):
        run_stage_in_process(stages[name])
        assert stages[name].done_marker.exists(), f"stage {name} did not produce {stages[name].done_marker}"

    summary = json.loads((tmp_path / "summary.json").read_text())
    checkpoints = summary["checkpoints"]["jax-state"]
    assert sorted(checkpoint["step"] for checkpoint in checkpoints) == [2, 4]
    assert summary["best"].startswith("jax-state:")
    assert "| jax-state |" in (tmp_path / "summary.md").read_text()
    assert list((tmp_path / "eval" / "jax-state" / "whiskers").rglob("*.mp4")), "a whisker video is recorded"
