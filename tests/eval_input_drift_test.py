"""Inputs checked against training before scoring (issue 33 item 1), end to end on tiny LeRobot checkpoints.

A checkpoint trained here on its own scene is never refused (ACT and Diffusion, and their perturbation
arms, whose drift the report names as expected); the same checkpoint with its card's training statistics
edited into each mismatch (joint order, BGR, cameras exchanged, degrees vs radians, a darker scene, another
fps) is refused in one line naming the cause, and ``--allow-input-drift`` scores it with the report saying
so at the top."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch

from backends.torch_lerobot.train import train_policy
from libs.datasets.fixtures import record_tiny_demonstrations
from libs.evaluation.plan.drift_fixtures import MISMATCHES, mismatched_card_dict
from libs.evaluation.plan.input_drift import InputDriftError
from libs.evaluation.plan.sweep_config import SweepConfig
from libs.evaluation.sweep import EnvSettings, evaluate
from libs.policy_api.card import CARD_FILE
from libs.sim.perturbations import Perturbation
from libs.sim.scene_config import SceneConfig

# One torch thread: on CI's 2 busy cores torch's default threads spin-wait and run several times slower.
torch.set_num_threads(1)
MAX_STEPS = 4
POLICY_TYPES = ("act", "diffusion", "smolvla", "pi0")
#: The VLAs train on a tiny random backbone made in the test (no model hub).
TINY_BACKBONE_TYPES = ("smolvla", "pi0")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("input_drift")


@pytest.fixture(scope="module")
def dataset(workdir: Path) -> Path:
    return record_tiny_demonstrations(workdir / "demos")


@pytest.fixture(scope="module")
def checkpoints(dataset: Path, workdir: Path) -> dict[str, Path]:
    """policy type -> its last checkpoint folder (tiny: two training steps)."""
    found = {}
    for policy_type in POLICY_TYPES:
        tiny = workdir / f"backbone_{policy_type}" if policy_type in TINY_BACKBONE_TYPES else None
        run = workdir / f"run_{policy_type}"
        trained = train_policy(policy_type, dataset, run, steps=2, batch_size=2, tiny_backbone_dir=tiny)
        found[policy_type] = trained[-1]
    return found


def _sweep(policy: str, out: Path, **env: object) -> SweepConfig:
    settings = EnvSettings(max_steps=MAX_STEPS, **env)  # type: ignore[arg-type]
    return SweepConfig(policy=policy, episodes=1, serial=True, progress=False, env=settings)


def _report_top(out: Path) -> str:
    """report.md before the ranked table."""
    return (out / "report.md").read_text().split("| checkpoint")[0]


@pytest.mark.parametrize("policy_type", POLICY_TYPES)
def test_a_checkpoint_on_its_own_scene_and_its_arms_is_not_refused(
    policy_type: str, checkpoints: dict[str, Path], dataset: Path, tmp_path: Path
) -> None:
    scene = SceneConfig.load(dataset / "meta" / "scene.json")
    arms = (Perturbation("dim", light_scale=0.3), Perturbation("shaky", action_noise_deg=2.0))
    scene_path = dataclasses.replace(scene, perturbations=arms).save(tmp_path / "scene.json")
    policy = f"torch_lerobot:{checkpoints[policy_type]}"
    result = evaluate(_sweep(policy, tmp_path / "own"), tmp_path / "own")
    assert result.ran == 1 and "Inputs vs training" not in (tmp_path / "own" / "report.md").read_text()
    config = _sweep(policy, tmp_path / "arms", scene_path=str(scene_path))
    config.perturbations = ("all",)
    evaluate(config, tmp_path / "arms")
    top = _report_top(tmp_path / "arms")
    assert "Expected input drift" in top and "(perturbation arm dim): " in top, top
    drift = json.loads((tmp_path / "arms" / "report.json").read_text())["input_drift"]
    causes = {check["arm"]: check["drifts"] for check in drift["checks"]}
    assert "scene or lighting" in [found["cause"] for found in causes["dim"]], causes
    assert causes["shaky"] == [], causes  # action noise leaves the inputs' statistics as training's


def _mismatched(checkpoint: Path, mismatch: str, into: Path) -> Path:
    copy = into / mismatch / checkpoint.name
    shutil.copytree(checkpoint, copy)
    for card_path in copy.rglob(CARD_FILE):
        card_path.write_text(json.dumps(mismatched_card_dict(json.loads(card_path.read_text()), mismatch)))
    return copy


@pytest.mark.parametrize("mismatch", sorted(MISMATCHES))
def test_a_mismatched_checkpoint_is_refused_naming_the_cause_and_allowed_on_request(
    mismatch: str, checkpoints: dict[str, Path], tmp_path: Path
) -> None:
    _, cause = MISMATCHES[mismatch]
    checkpoint = _mismatched(checkpoints["act"], mismatch, tmp_path)
    policy = f"torch_lerobot:{checkpoint}"
    with pytest.raises(InputDriftError) as refused:
        evaluate(_sweep(policy, tmp_path / "refused"), tmp_path / "refused")
    message = str(refused.value)
    assert refused.value.drifts[0].cause == cause, message
    assert "\n" not in message and "--allow-input-drift evaluates anyway" in message
    result = evaluate(_sweep(policy, tmp_path / "allowed", allow_input_drift=True), tmp_path / "allowed")
    assert result.ran == 1
    top = _report_top(tmp_path / "allowed")
    assert "Evaluated with `--allow-input-drift`" in top and refused.value.drifts[0].line in top, top


def test_serve_refuses_a_mismatched_checkpoint_in_one_line(
    checkpoints: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from services.policy_server.serve import main

    checkpoint = _mismatched(checkpoints["act"], "permuted_joints", tmp_path)
    assert main(["--policy", f"torch_lerobot:{checkpoint}", "--port", "0", "--inference-threads", "1"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and "joint order differs from training" in error and "\n" not in error
