"""Inputs checked against training before scoring (issue 33 item 1) on a tiny JAX flow-matching checkpoint
(state-based): not refused on its own scene; its card's state and action statistics permuted or scaled are
refused naming the cause."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from backends.jax_openpi import train as train_lib
from libs.datasets.record import record_scripted_dataset
from libs.evaluation.plan.drift_fixtures import MISMATCHES, mismatched_card_dict
from libs.evaluation.plan.input_drift import InputDriftError
from libs.evaluation.plan.sweep_config import SweepConfig
from libs.evaluation.sweep import EnvSettings, evaluate
from libs.policy_api.card import CARD_FILE
from libs.sim.scene_config import SceneConfig

MAX_STEPS = 4


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("input_drift_jax")
    dataset = workdir / "demos"
    scene = SceneConfig().state_based()
    record_scripted_dataset(dataset, episodes=2, seed=0, scene=scene, max_steps=30, progress=False)
    out = workdir / "run"
    arguments = ["--config", "so101_state_test", "--dataset", str(dataset), "--out", str(out)]
    assert train_lib.main([*arguments, "--steps", "2", "--save-interval", "2", "--compute-norm-stats"]) == 0
    return out


def _sweep(policy: str) -> SweepConfig:
    return SweepConfig(
        policy=policy, episodes=1, serial=True, progress=False, env=EnvSettings(max_steps=MAX_STEPS)
    )


def test_a_jax_checkpoint_on_its_own_scene_is_not_refused(run: Path, tmp_path: Path) -> None:
    assert evaluate(_sweep(f"jax_openpi:{run}"), tmp_path / "own").ran == 1


@pytest.mark.parametrize("mismatch", ["permuted_joints", "radians"])
def test_a_jax_checkpoint_with_mismatched_stats_is_refused(mismatch: str, run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    cards = list(copy.rglob(CARD_FILE))
    assert cards
    for card_path in cards:
        card_path.write_text(json.dumps(mismatched_card_dict(json.loads(card_path.read_text()), mismatch)))
    with pytest.raises(InputDriftError) as refused:
        evaluate(_sweep(f"jax_openpi:{copy}"), tmp_path / "refused")
    assert refused.value.drifts[0].cause == MISMATCHES[mismatch][1], str(refused.value)
