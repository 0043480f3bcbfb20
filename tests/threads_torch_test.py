"""The thread count each torch command decides (libs/compute_threads) changes its speed, never its results:
a serial sweep of tiny ACT and Diffusion checkpoints plays every seed to the same outcome, steps, pick and
lift height on one thread and on two; and each command prints its count and takes ``--threads``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backends.torch_lerobot import train, train_estimator
from backends.torch_lerobot.train import train_policy
from libs.compute_threads import ALL_VARIABLES
from libs.datasets.record import record_scripted_dataset
from libs.evaluation.play.fixtures import SMALL_ACT
from libs.evaluation.results.store import STORE_FILE_NAME, ResultsStore
from libs.sim.scene_config import SceneConfig
from services.eval import sweep as sweep_cli

POLICIES: dict[str, tuple[str, dict[str, Any]]] = {
    "act": ("act", {**SMALL_ACT, "chunk_size": 10, "n_action_steps": 4}),
    "diffusion": ("diffusion", {"down_dims": (32, 64, 128), "num_inference_steps": 4}),
}
#: what decides an episode's result (the wall time and latency are the thread count's to change)
RESULT_FIELDS = ("outcome", "steps", "picked", "pick_step", "max_block_height_m", "inferences", "failure")


@pytest.fixture(autouse=True)
def thread_settings_restored(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each command sets this process's thread variables and torch's count; not beyond the test."""
    import torch

    for variable in ALL_VARIABLES:
        monkeypatch.setenv(variable, "")
        monkeypatch.delenv(variable)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("threads") / "demos"
    scene = SceneConfig().with_image_size(48, 64)
    record_scripted_dataset(root, episodes=2, seed=0, scene=scene, max_steps=30, progress=False)
    return root


def _sweep_results(checkpoint: Path, out: Path, threads: int, capsys: pytest.CaptureFixture[str]) -> dict:
    argv = ["--policy", f"torch_lerobot:{checkpoint}", "--episodes", "3", "--max-steps", "25", "--serial"]
    assert sweep_cli.main([*argv, "--no-progress", "--threads", str(threads), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"threads: {threads} per model (set by --threads; "), printed
    import torch

    assert torch.get_num_threads() == threads  # the policy ran on the count printed
    with ResultsStore(out / STORE_FILE_NAME) as store:
        return {record.seed: [getattr(record, name) for name in RESULT_FIELDS] for record in store.records()}


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_a_serial_sweep_plays_every_seed_the_same_on_one_thread_and_on_two(
    name: str, dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy_type, overrides = POLICIES[name]
    run = dataset.parent / f"run_{name}"
    checkpoint = train_policy(
        policy_type, dataset, run, steps=1, batch_size=2, policy_overrides=overrides, log_freq=1
    )[-1]
    one = _sweep_results(checkpoint, dataset.parent / f"sweep_{name}_1", 1, capsys)
    two = _sweep_results(checkpoint, dataset.parent / f"sweep_{name}_2", 2, capsys)
    assert sorted(one) == [0, 1, 2]
    assert one == two


def test_train_prints_its_threads_and_takes_the_override(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "no-such-dataset")
    argv = ["--policy", "act", "--dataset", missing, "--out", str(tmp_path / "run"), "--steps", "1"]
    assert train.main([*argv, "--threads", "1"]) == 2  # the missing dataset: after the threads are set
    assert capsys.readouterr().out.startswith("threads: 1 per model (set by --threads; ")
    assert os.environ["OMP_NUM_THREADS"] == "1"
    assert train.main([*argv, "--num-workers", "1"]) == 2
    decided = capsys.readouterr().out
    assert decided.startswith("threads: ") and ", 1 kept for data-loader workers;" in decided, decided
    assert train.main([*argv, "--threads", "0"]) == 2
    assert "error: --threads 0: give at least 1" in capsys.readouterr().err


def test_train_estimator_prints_its_threads_and_takes_the_override(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--dataset", str(tmp_path / "none"), "--out", str(tmp_path / "estimator"), "--steps", "1"]
    assert train_estimator.main([*argv, "--threads", "2"]) == 2  # the missing dataset
    assert capsys.readouterr().out.startswith("threads: 2 per model (set by --threads; ")
    import torch

    assert torch.get_num_threads() == 2
    assert train_estimator.main(argv) == 2
    assert capsys.readouterr().out.startswith("threads: ")
