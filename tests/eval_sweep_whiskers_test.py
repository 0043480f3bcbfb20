"""--whiskers N on the sweep: episodes replayed with whiskers, videos on disk, likely causes in the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from libs.evaluation.play.whiskers import SECTION_KEY, SECTION_TITLE
from libs.evaluation.sweep import EnvSettings, SweepConfig, evaluate
from libs.policy_api.registry import register_backend
from libs.policy_api.types import PolicySpec
from libs.sim.env import HOME_JOINTS


def _sweep(tmp_path: Path, policy: str, max_steps: int) -> tuple[dict, str]:
    config = SweepConfig(
        policy=policy,
        episodes=1,
        env=EnvSettings(max_steps=max_steps),
        serial=True,
        progress=False,
        whiskers=1,
    )
    evaluate(config, tmp_path, argv=["test"])
    return json.loads((tmp_path / "report.json").read_text()), (tmp_path / "report.md").read_text()


def test_scripted_sweep_with_whiskers_writes_videos_and_a_likely_causes_section(tmp_path: Path) -> None:
    report, markdown = _sweep(tmp_path, "scripted", max_steps=30)
    section = report[SECTION_KEY]
    assert section["mode"].startswith("dynamic")
    (checkpoint,) = section["checkpoints"].values()
    (episode,) = checkpoint["episodes"]
    assert episode["seed"] == 0 and {"video", "summary"} <= set(episode["files"])
    assert (tmp_path / episode["files"]["video"]).stat().st_size > 0
    assert checkpoint["checks"][0]["name"] == "does not move"
    assert f"## {SECTION_TITLE}" in markdown


class WildPolicy:
    """De-normalised with the wrong stats: its first chunk is far outside the joint range."""

    spec = PolicySpec(cameras=(), chunk_length=5, n_action_steps=5)

    def reset(self) -> None:
        pass

    def infer(self, observation) -> np.ndarray:
        chunk = np.repeat(HOME_JOINTS[None, :], 5, axis=0).astype(np.float32)
        chunk[:, 1] = -2455.0
        return chunk


def test_an_episode_stopped_on_its_first_unsafe_chunk_still_shows_its_whiskers(tmp_path: Path) -> None:
    register_backend("test_wild", lambda argument: WildPolicy())
    report, markdown = _sweep(tmp_path, "test_wild", max_steps=10)
    (summary,) = report["checkpoints"]
    assert summary["outcome_counts"]["contract_violation"] == 1 == summary["episodes"]
    (checkpoint,) = report[SECTION_KEY]["checkpoints"].values()
    (episode,) = checkpoint["episodes"]
    assert episode["outcome"] == "contract_violation"
    assert (tmp_path / episode["files"]["video"]).is_file(), "the unsafe chunk's whiskers are drawn"
    assert "outside the joint range" in markdown
