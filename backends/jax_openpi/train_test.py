import csv
import json
from pathlib import Path

import jax
import numpy as np
import pytest

from backends.jax_openpi import train as train_lib
from backends.jax_openpi.adapter import JaxOpenpiPolicy
from backends.jax_openpi.checkpoints import CheckpointError
from backends.jax_openpi.compute_norm_stats import main as compute_norm_stats_main
from backends.jax_openpi.config import get_config
from backends.jax_openpi.fixtures import write_tiny_dataset
from backends.jax_openpi.norm_stats import load_norm_stats
from libs.policy_api.card import HasCard
from libs.policy_api.registry import make_policy
from libs.policy_api.types import ReportsNormalizedInputs

CONFIG = get_config("so101_test").replace(save_interval=2, keep_last=2, keep_period=4)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_tiny_dataset(tmp_path_factory.mktemp("data") / "tiny", episodes=2, length=12)


@pytest.fixture(scope="module")
def trained_run(dataset: Path, tmp_path_factory) -> tuple[Path, train_lib.TrainState]:
    out = tmp_path_factory.mktemp("run")
    assert (
        compute_norm_stats_main(["--config", "so101_test", "--dataset", str(dataset), "--out", str(out)]) == 0
    )
    state = train_lib.train(CONFIG, dataset, out, steps=5, progress=False)
    return out, state


def observation(state: np.ndarray, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "observation.state": state.astype(np.float32),
        "observation.images.overhead": rng.integers(0, 256, (24, 32, 3), dtype=np.uint8),
        "observation.images.wrist": rng.integers(0, 256, (24, 32, 3), dtype=np.uint8),
        "task": "put the block in the bowl",
    }


def test_training_without_norm_stats_fails_with_one_clear_line(dataset: Path, tmp_path: Path, capsys) -> None:
    code = train_lib.main(
        ["--config", "so101_test", "--dataset", str(dataset), "--out", str(tmp_path), "--steps", "1"]
    )
    error = capsys.readouterr().err.strip()
    assert code == 2
    assert len(error.splitlines()) == 1
    assert "no norm stats" in error and "compute_norm_stats" in error
    assert not (tmp_path / "checkpoints").exists()


def test_norm_stats_are_openpi_format_with_quantiles(trained_run) -> None:
    out, _ = trained_run
    payload = json.loads((out / "assets" / "norm_stats.json").read_text())
    assert set(payload["norm_stats"]) == {"state", "actions"}
    assert set(payload["norm_stats"]["actions"]) == {"mean", "std", "q01", "q99"}
    stats = load_norm_stats(out / "assets")
    assert stats["state"].mean.shape == (6,)
    assert stats["state"].q99[5] <= 1.0 + 1e-6  # the gripper is normalised in 0–1 units


def test_checkpoint_layout_retention_and_metrics(trained_run) -> None:
    out, state = trained_run
    assert state.step == 5
    steps = sorted(p.name for p in (out / "checkpoints").iterdir() if p.name.isdigit())
    assert steps == ["000004", "000005"]  # keep last 2; step 2 pruned (not a multiple of keep_period 4)
    last = out / "checkpoints" / "000005"
    for name in (
        "params",
        "train_state",
        "config.json",
        "assets/norm_stats.json",
        "card.json",
    ):
        assert (last / name).exists(), name
    assert json.loads((last / "config.json").read_text())["name"] == "so101_test"
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [int(row["step"]) for row in rows] == [1, 2, 3, 4, 5]
    assert all(np.isfinite(float(row["loss"])) and float(row["steps_per_s"]) > 0 for row in rows)


def test_training_resumes_from_the_last_checkpoint(trained_run, dataset: Path) -> None:
    out, _ = trained_run
    resumed = train_lib.train(CONFIG, dataset, out, steps=6, progress=False)
    assert resumed.step == 6
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [int(row["step"]) for row in rows][-2:] == [5, 6]  # continued, not restarted at 1


def test_resuming_with_a_changed_model_is_refused_in_one_line(trained_run, dataset: Path) -> None:
    # e.g. a named config redefined between versions (so101_cpu gained a conv stem): orbax would fail
    # with shape errors mid-restore; the run folder is left as it is.
    import dataclasses

    out, _ = trained_run
    before = sorted(path.name for path in (out / "checkpoints").iterdir())
    changed = CONFIG.replace(model=dataclasses.replace(CONFIG.model, conv_stem=(4, 8, 8)))
    with pytest.raises(train_lib.TrainError, match="differs in conv_stem.*--no-resume"):
        train_lib.train(changed, dataset, out, steps=8, progress=False)
    assert sorted(path.name for path in (out / "checkpoints").iterdir()) == before


def test_saved_checkpoint_reproduces_actions(trained_run) -> None:
    out, _ = trained_run
    policy = make_policy(f"jax_openpi:{out / 'checkpoints' / '000005'}")
    again = JaxOpenpiPolicy(out / "checkpoints" / "000005")
    assert isinstance(policy, HasCard) and isinstance(policy, ReportsNormalizedInputs)
    assert policy.spec.chunk_length == 50 and policy.spec.action_dim == 6
    assert [camera.name for camera in policy.spec.cameras] == ["overhead", "wrist"]
    obs = observation(np.array([5, -10, 20, 0, 3, 80], np.float32))
    first, second = policy.infer(obs), again.infer(obs)
    assert first.shape == (50, 6) and first.dtype == np.float32
    np.testing.assert_array_equal(first, second)
    # the restored weights are the ones training held at that step
    jax.tree.map(np.testing.assert_array_equal, policy.params, again.params)
    normalized = policy.last_normalized_inputs()
    assert set(normalized) == {"observation.state", "observation.images.overhead", "observation.images.wrist"}
    assert policy.card.step == 5 and policy.card.scene is not None


def test_episode_noise_depends_on_the_episode_seed_not_on_history(trained_run) -> None:
    out, _ = trained_run
    policy = JaxOpenpiPolicy(out / "checkpoints" / "000005")
    obs = observation(np.array([5, -10, 20, 0, 3, 80], np.float32))

    def episode(seed: int, earlier_calls: int = 0) -> np.ndarray:
        for _ in range(earlier_calls):  # what other episodes on this worker did before
            policy.infer(obs)
        np.random.seed(seed)  # as the harness does before reset()
        policy.reset()
        return policy.infer(obs)

    fresh = episode(7)
    np.testing.assert_array_equal(fresh, episode(7, earlier_calls=3))
    assert not np.array_equal(fresh, episode(8))


def test_missing_or_corrupt_checkpoint_gives_one_line(trained_run, tmp_path: Path) -> None:
    out, _ = trained_run
    with pytest.raises(CheckpointError, match="does not exist"):
        make_policy(f"jax_openpi:{tmp_path / 'nowhere'}")
    broken = tmp_path / "000001"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        make_policy(f"jax_openpi:{broken}")
    no_stats = tmp_path / "000002"
    no_stats.mkdir()
    (no_stats / "config.json").write_text((out / "checkpoints" / "000005" / "config.json").read_text())
    with pytest.raises(CheckpointError, match="no norm stats"):
        make_policy(f"jax_openpi:{no_stats}")


def test_checkpoint_with_damaged_weights_gives_one_line(trained_run, tmp_path: Path) -> None:
    import shutil

    out, _ = trained_run
    damaged = tmp_path / "000005"
    shutil.copytree(out / "checkpoints" / "000005", damaged)
    shutil.rmtree(damaged / "params" / "d")
    with pytest.raises(CheckpointError, match="unreadable 'params'") as caught:
        make_policy(f"jax_openpi:{damaged}")
    assert "\n" not in str(caught.value)


def test_probe_loader_times_the_pipeline_against_a_train_step(dataset: Path, tmp_path: Path, capsys) -> None:
    args = ["--config", "so101_test", "--dataset", str(dataset), "--out", str(tmp_path), "--steps", "2"]
    code = train_lib.main([*args, "--compute-norm-stats", "--probe-loader", "--save-interval", "2"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "preflight data loader" in printed and "model step:" in printed
    assert "recommended num_workers=0" in printed
    # The probe's train steps ran on copies: training still starts from step 0 and saves step 2.
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [int(row["step"]) for row in rows][-1] == 2
