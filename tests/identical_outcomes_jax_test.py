"""The harness plays a tiny JAX flow-matching policy (state-based: joint state and environment state, no
camera) exactly as pinned in ``tests/identical_outcomes.json``: per seed the record and every executed
action, one episode at a time and in lockstep. Two training steps on two scripted demonstrations."""

from __future__ import annotations

from pathlib import Path

from backends.jax_openpi import train as train_lib
from libs.datasets.record import record_scripted_dataset
from libs.evaluation.play.fixtures import check_policy_pins
from libs.policy_api.registry import make_policy
from libs.sim.scene_config import SceneConfig

EPISODE_STEPS = 20
SEEDS = (0, 1)


def test_jax_policy_outcomes_and_actions(tmp_path: Path) -> None:
    dataset = tmp_path / "demos"
    scene = SceneConfig().state_based()
    record_scripted_dataset(dataset, episodes=2, seed=0, scene=scene, max_steps=30, progress=False)
    run = tmp_path / "run"
    arguments = ["--config", "so101_state_test", "--dataset", str(dataset), "--out", str(run)]
    assert train_lib.main([*arguments, "--steps", "2", "--save-interval", "2", "--compute-norm-stats"]) == 0
    policy = make_policy(f"jax_openpi:{run}")
    check_policy_pins("jax_flow_matching", policy, scene, SEEDS, EPISODE_STEPS)
