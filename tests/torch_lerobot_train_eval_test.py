"""LeRobot backend end to end, offline and tiny: scripted demos -> LeRobot training (each policy type) ->
checkpoint in LeRobot's layout -> ``torch_lerobot:<dir>`` -> one harness episode; plus save/reload
determinism, the missing-processor refusal and LeRobot's own ``lerobot-eval`` on our env plugin."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from backends.torch_lerobot.adapter import LeRobotPolicy
from backends.torch_lerobot.checkpoints import CheckpointError
from backends.torch_lerobot.train import TrainError, train_policy
from libs.datasets.fixtures import record_tiny_demonstrations
from libs.evaluation.play.evaluated_episode import evaluate_episode
from libs.evaluation.results.episode_record import RecordLabel
from libs.policy_api.card import CheckpointCard, HasCard
from libs.policy_api.registry import PolicyLoadError, make_policy
from libs.policy_api.types import ReportsNormalizedInputs
from libs.sim.env import SO101PickPlaceEnv
from libs.sim.scene_config import SceneConfig

POLICY_TYPES = ("act", "diffusion", "smolvla", "pi0")
# One torch thread: on CI's 2 busy cores torch's default threads spin-wait and run several times slower.
torch.set_num_threads(1)
EPISODE_STEPS = 6


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("torch_lerobot")


@pytest.fixture(scope="module")
def dataset(workdir: Path) -> Path:
    return record_tiny_demonstrations(workdir / "demos")


@pytest.fixture(scope="module", params=POLICY_TYPES)
def trained_run(request: pytest.FixtureRequest, dataset: Path, workdir: Path) -> tuple[str, Path]:
    policy_type = request.param
    run = workdir / f"run_{policy_type}"
    tiny = workdir / f"backbone_{policy_type}" if policy_type in ("smolvla", "pi0") else None
    checkpoints = train_policy(
        policy_type, dataset, run, steps=2, batch_size=2, save_freq=1, tiny_backbone_dir=tiny, log_freq=1
    )
    assert [checkpoint.name for checkpoint in checkpoints] == ["000001", "000002"]
    return policy_type, run


def _env_for(policy: LeRobotPolicy, max_steps: int = EPISODE_STEPS) -> SO101PickPlaceEnv:
    scene = SceneConfig.from_dict(policy.card.scene)
    scene = scene.with_cameras([camera.name for camera in policy.spec.cameras])
    return SO101PickPlaceEnv(scene=scene, action_space=policy.spec.action_space, max_steps=max_steps)


def test_checkpoint_has_lerobot_layout_and_dataset_meta(trained_run: tuple[str, Path], dataset: Path) -> None:
    _, run = trained_run
    pretrained = run / "checkpoints" / "000002" / "pretrained_model"
    for name in ("config.json", "model.safetensors", "policy_preprocessor.json", "policy_postprocessor.json"):
        assert (pretrained / name).is_file(), name
    card = CheckpointCard.read(pretrained)
    assert card is not None and card.step == 2
    assert card.scene == json.loads((dataset / "meta" / "scene.json").read_text())
    assert card.stats == json.loads((dataset / "meta" / "stats.json").read_text())


def test_harness_runs_one_episode(trained_run: tuple[str, Path]) -> None:
    policy_type, run = trained_run
    policy = make_policy(f"torch_lerobot:{run}")  # a run dir -> its last checkpoint
    assert isinstance(policy, LeRobotPolicy) and isinstance(policy, HasCard)
    assert isinstance(policy, ReportsNormalizedInputs)
    assert policy.card.step == 2 and policy.card.extra["policy_type"] == policy_type
    assert {camera.name for camera in policy.spec.cameras} == {"overhead", "wrist"}
    env = _env_for(policy)
    action_stats = policy.card.action_stats
    # A flow-matching head (SmolVLA, Pi0) two steps into training returns its initial noise, N(0, 1) in
    # normalised units; a chunk of it can land far beyond a joint limit, and the harness then rightly ends
    # the episode as a contract violation. Other noise seeds give in-range chunks.
    result, violations = None, []
    try:
        for noise_seed in range(20):
            torch.manual_seed(noise_seed)
            result = evaluate_episode(
                policy,
                env,
                3,
                action_stats=action_stats,
                label=RecordLabel(step=policy.card.step),
                keep_chunks=True,
            )
            if result.record.violation is None:
                break
            violations.append(result.record.violation)
    finally:
        env.close()
    assert all("joint" in message for message in violations), violations
    assert result is not None and result.record.violation is None, violations
    if policy_type in ("act", "diffusion"):
        assert not violations
    assert result.record.steps == EPISODE_STEPS
    assert result.chunks and all(
        chunk.shape[1] == 6 and chunk.dtype == np.float32 for _, chunk in result.chunks
    )
    assert set(policy.last_normalized_inputs()) >= {"observation.state", "observation.images.overhead"}


def test_save_and_reload_give_identical_actions(trained_run: tuple[str, Path], workdir: Path) -> None:
    policy_type, run = trained_run
    original = LeRobotPolicy(run / "checkpoints" / "000002")
    reloaded = LeRobotPolicy(original.save(workdir / f"exported_{policy_type}"))
    env = _env_for(original)
    try:
        observation, _ = env.reset(seed=5)
    finally:
        env.close()
    chunks = []
    for policy in (original, reloaded):
        # Diffusion, SmolVLA and Pi0 sample noise from a stream seeded at reset from numpy's global RNG,
        # which the harness seeds with the episode's seed: the same episode seed, the same noise.
        np.random.seed(5)
        policy.reset()
        chunks.append(policy.infer(observation))
    assert chunks[0].shape == (original.spec.chunk_length, 6)
    np.testing.assert_array_equal(chunks[0], chunks[1])


def test_checkpoint_without_processors_is_refused_in_one_line(dataset: Path, workdir: Path) -> None:
    run = workdir / "run_act_missing_processors"
    checkpoint = train_policy("act", dataset, run, steps=1, batch_size=2)[-1] / "pretrained_model"
    (checkpoint / "policy_postprocessor.json").unlink()
    with pytest.raises(PolicyLoadError) as raised:
        make_policy(f"torch_lerobot:{checkpoint}")
    assert isinstance(raised.value, CheckpointError)
    message = str(raised.value)
    assert "\n" not in message and "policy_postprocessor.json" in message and "de-normalised" in message
    assert "not be normalised" not in message  # only the outputs are affected


def test_probe_loader_times_lerobots_loader_against_a_train_step(dataset: Path, workdir: Path) -> None:
    run = workdir / "run_act_probe"
    checkpoints = train_policy("act", dataset, run, steps=1, batch_size=2, probe_workers=(0, 1))
    table = (run / "preflight.txt").read_text()
    assert [line.split()[0] for line in table.splitlines()[1:3]] == ["0", "1"]  # one row per num_workers
    assert "model step:" in table and "recommended num_workers=" in table
    assert checkpoints[-1].name == "000001"  # training ran as usual after the probe


def test_bad_training_inputs_are_one_line_errors(dataset: Path, workdir: Path) -> None:
    with pytest.raises(TrainError, match="not a LeRobot v3 dataset"):
        train_policy("act", workdir, workdir / "never", steps=1)
    existing = workdir / "existing_run"
    existing.mkdir()
    with pytest.raises(TrainError, match="already exists"):
        train_policy("act", dataset, existing, steps=1)


def test_observation_without_a_trained_camera_names_the_keys(workdir: Path, dataset: Path) -> None:
    run = workdir / "run_act_cameras"
    policy = LeRobotPolicy(train_policy("act", dataset, run, steps=1, batch_size=2)[-1])
    observation = {"observation.state": np.zeros(6, np.float32), "task": "x"}
    observation["observation.images.overhead"] = np.zeros((48, 64, 3), np.uint8)
    observation["observation.images.side"] = np.zeros((48, 64, 3), np.uint8)
    policy.reset()
    with pytest.raises(
        ValueError, match=r"lacks observation\.images\.wrist.*observation has: .*images\.side"
    ):
        policy.infer(observation)


def test_lerobot_eval_runs_a_checkpoint_on_the_env_plugin(
    dataset: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backends.torch_lerobot import lerobot_eval

    pretrained = train_policy("act", dataset, workdir / "run_act_lerobot_eval", steps=1, batch_size=2)[-1]
    pretrained = pretrained / "pretrained_model"
    out = workdir / "lerobot_eval"
    argv = [
        "lerobot-eval",
        "--env.type=so101_pick_place",
        f"--env.scene_path={pretrained / 'card.json'}",
        "--env.episode_length=5",
        f"--policy.path={pretrained}",
        "--policy.device=cpu",
        "--eval.n_episodes=1",
        "--eval.batch_size=1",
        f"--output_dir={out}",
    ]
    monkeypatch.setattr(sys, "argv", argv)
    lerobot_eval.main()
    info = json.loads((out / "eval_info.json").read_text())
    assert info["overall"]["n_episodes"] == 1
    shutil.rmtree(out / "videos", ignore_errors=True)


def test_checkpoint_whose_local_backbone_moved_is_one_line(dataset: Path, workdir: Path) -> None:
    backbone = workdir / "backbone_to_move"
    run = workdir / "run_smolvla_moved_backbone"
    train_policy("smolvla", dataset, run, steps=1, batch_size=2, tiny_backbone_dir=backbone)
    backbone.rename(workdir / "backbone_moved")
    with pytest.raises(CheckpointError, match="no longer exists") as raised:
        make_policy(f"torch_lerobot:{run}")
    assert "\n" not in str(raised.value)


def test_clients_batched_into_one_pass_get_their_own_chunks(trained_run: tuple[str, Path]) -> None:
    """What the policy server does with concurrent clients: one forward pass, one episode state each."""
    policy_type, run = trained_run
    policy = LeRobotPolicy(run / "checkpoints" / "000002")
    env = _env_for(policy)
    try:
        observations = [env.reset(seed=seed)[0] for seed in (5, 6, 7)]
    finally:
        env.close()
    episodes = [policy.new_episode(seed) for seed in range(3)]
    batched = policy.infer_batch(observations, episodes)
    assert [chunk.shape for chunk in batched] == [(policy.spec.chunk_length, 6)] * 3
    assert all(np.isfinite(chunk).all() for chunk in batched)
    assert all("observation.state" in episode.normalized_inputs for episode in episodes)
    if policy_type == "act":  # deterministic: a batched chunk is the chunk each observation gets alone
        for observation, chunk in zip(observations, batched, strict=True):
            alone = policy.infer_batch([observation], [policy.new_episode(0)])[0]
            np.testing.assert_allclose(chunk, alone, atol=1e-4)


@pytest.fixture(scope="module")
def act_checkpoint(dataset: Path, workdir: Path) -> Path:
    return train_policy("act", dataset, workdir / "run_act_bad_inputs", steps=1, batch_size=2)[-1]


def sweep_error_line(checkpoint: Path, out: Path, capsys) -> str:
    """What a user sees from ``services/eval:sweep-torch_lerobot`` on this checkpoint: exit 2, one line."""
    from services.eval import sweep as sweep_cli

    code = sweep_cli.main(
        [
            "--policy",
            f"torch_lerobot:{checkpoint}",
            "--episodes",
            "1",
            "--serial",
            "--no-progress",
            "--out",
            str(out),
        ]
    )
    error = capsys.readouterr().err.strip()
    assert code == 2 and error.startswith("error: ") and "\n" not in error, error
    return error


def broken_copy(act_checkpoint: Path, workdir: Path, name: str) -> Path:
    copy = workdir / "broken" / name
    shutil.copytree(act_checkpoint, copy / act_checkpoint.name)
    return copy / act_checkpoint.name


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_weights_are_one_line(act_checkpoint, workdir, tmp_path, capsys, damage) -> None:
    checkpoint = broken_copy(act_checkpoint, workdir, f"weights_{damage}")
    weights = checkpoint / "pretrained_model" / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"\x00" * 64 + data[64:])
    error = sweep_error_line(checkpoint, tmp_path, capsys)
    assert f"{weights} cannot be read" in error and "truncated or corrupt" in error


def test_n_action_steps_above_chunk_size_is_one_line(act_checkpoint, workdir, tmp_path, capsys) -> None:
    checkpoint = broken_copy(act_checkpoint, workdir, "config")
    config_path = checkpoint / "pretrained_model" / "config.json"
    config = json.loads(config_path.read_text())
    config["n_action_steps"] = config["chunk_size"] + 5
    config_path.write_text(json.dumps(config))
    error = sweep_error_line(checkpoint, tmp_path, capsys)
    assert f"{config_path} is not a valid policy config" in error and "n_action_steps" in error


def test_truncated_card_names_the_file(act_checkpoint, workdir, tmp_path, capsys) -> None:
    checkpoint = broken_copy(act_checkpoint, workdir, "card")
    card = checkpoint / "pretrained_model" / "card.json"
    card.write_text(card.read_text()[:40])
    error = sweep_error_line(checkpoint, tmp_path, capsys)
    assert f"{card} is not valid JSON" in error and "truncated or corrupt" in error


def test_temporal_ensembling_acts_as_lerobots_own(dataset: Path, workdir: Path) -> None:
    """An ACT trained with ``temporal_ensemble_coeff`` observes every step, and the action executed is the
    ensemble LeRobot's ``select_action`` would give, not the newest chunk's first row."""
    checkpoint = train_policy(
        "act",
        dataset,
        workdir / "run_act_ensemble",
        steps=1,
        batch_size=2,
        policy_overrides={"temporal_ensemble_coeff": 0.01, "n_action_steps": 1},
    )[-1]
    policy = LeRobotPolicy(checkpoint)
    assert policy.spec.n_action_steps == 1
    env = _env_for(policy)
    try:
        observations = [env.reset(seed=seed)[0] for seed in (1, 2, 3, 4)]
    finally:
        env.close()
    reference = LeRobotPolicy(checkpoint)
    reference.policy.reset()
    policy.reset()
    for observation in observations:
        batch = reference.preprocessor(reference._to_policy_inputs(observation))
        expected = reference.postprocessor(reference.policy.select_action(batch))[0].numpy()
        chunk = policy.infer(observation)
        assert chunk.shape == (policy.spec.chunk_length, 6)
        np.testing.assert_allclose(chunk[0], expected, atol=1e-4)
    assert not np.allclose(chunk[0], policy.infer_batch([observation], [policy.new_episode(0)])[0][0])
