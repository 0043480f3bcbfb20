"""Images drawn on demand change nothing but the cost: for a chunked policy (ACT executing 4 of a 10-action
chunk), a per-step policy (ACT with temporal ensembling, which observes every step) and a policy with an
observation history (Diffusion, n_obs_steps 2, 8 of its actions per plan), the harness's episodes give the
same records and execute the same actions with on-demand and with eager rendering, on the same seeds; and
on demand draws only the frames the policy reads. Tiny LeRobot models (one training step from random
initialisation) on a scripted-expert dataset. Also: the same episodes in lockstep, batched per inference,
alone and through the sweep (``--lockstep-envs``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from backends.torch_lerobot.adapter import LeRobotPolicy
from backends.torch_lerobot.train import train_policy
from libs.datasets.record import record_scripted_dataset
from libs.evaluation.play.evaluated_episode import evaluate_episode
from libs.evaluation.play.fixtures import SMALL_ACT
from libs.sim.draw_counting_env import DrawCountingEnv
from libs.sim.env import SO101PickPlaceEnv
from libs.sim.play.observers import EpisodeObserver, StepEvent
from libs.sim.scene_config import SceneConfig
from services.eval.fixtures import stored

torch.set_num_threads(1)  # two busy cores: torch's default threads spin-wait
EPISODE_STEPS = 20
SEEDS = (0, 1)
#: Record fields that measure time, not behaviour.
TIMING_FIELDS = ("wall_time_s", "latency_mean_ms", "latency_p95_ms")

POLICIES: dict[str, tuple[str, dict[str, Any]]] = {
    "act_chunked": ("act", {**SMALL_ACT, "chunk_size": 10, "n_action_steps": 4}),
    "act_temporal_ensemble": (
        "act",
        {**SMALL_ACT, "chunk_size": 10, "n_action_steps": 1, "temporal_ensemble_coeff": 0.01},
    ),
    "diffusion": ("diffusion", {"down_dims": (32, 64, 128), "num_inference_steps": 4}),
}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("on_demand") / "demos"
    scene = SceneConfig().with_image_size(48, 64)
    record_scripted_dataset(root, episodes=2, seed=0, scene=scene, max_steps=30, progress=False)
    return root


@pytest.fixture(scope="module", params=sorted(POLICIES))
def policy(request: pytest.FixtureRequest, dataset: Path) -> LeRobotPolicy:
    policy_type, overrides = POLICIES[request.param]
    run = dataset.parent / f"run_{request.param}"
    checkpoint = train_policy(
        policy_type, dataset, run, steps=1, batch_size=2, policy_overrides=overrides, log_freq=1
    )[-1]
    return LeRobotPolicy(checkpoint)


def _episodes(
    policy: LeRobotPolicy, image_rendering: str
) -> tuple[list[dict[str, Any]], list[np.ndarray], int]:
    scene = SceneConfig.from_dict(policy.card.scene)
    env = DrawCountingEnv(
        scene=scene.with_cameras([camera.name for camera in policy.spec.cameras]),
        max_steps=EPISODE_STEPS,
        image_rendering=image_rendering,  # type: ignore[arg-type]
    )
    records, actions = [], []
    try:
        for seed in SEEDS:
            executed: list[np.ndarray] = []

            class Keep(EpisodeObserver):
                def on_step(self, event: StepEvent, executed: list[np.ndarray] = executed) -> None:
                    executed.append(np.array(event.action, copy=True))

            stats = policy.card.action_stats
            result = evaluate_episode(policy, env, seed, action_stats=stats, observers=[Keep()])
            record = result.record.to_dict()
            records.append({key: value for key, value in record.items() if key not in TIMING_FIELDS})
            actions.append(np.stack(executed))
    finally:
        env.close()
    return records, actions, env.draws


def test_on_demand_rendering_gives_the_eager_outcomes_and_actions(policy: LeRobotPolicy) -> None:
    eager_records, eager_actions, eager_draws = _episodes(policy, "eager")
    records, actions, draws = _episodes(policy, "on_demand")

    assert records == eager_records
    for seed, eager, on_demand in zip(SEEDS, eager_actions, actions, strict=True):
        assert len(eager) > EPISODE_STEPS // 2, seed
        np.testing.assert_array_equal(on_demand, eager, err_msg=f"seed {seed}")

    cameras = len(policy.spec.cameras)
    steps = [int(record["steps"]) for record in records]
    assert eager_draws == sum(count + 1 for count in steps) * cameras  # reset, then every step
    inferences = sum(int(record["inferences"]) for record in records)
    if policy.config.type == "diffusion":
        # Called every step (spec n_action_steps 1) but it plans every 8 steps from the last 2 observations:
        # only those are read, two per plan but one for the first.
        every = int(policy.config.n_action_steps)
        assert inferences == sum(steps)
        assert draws == sum(2 * -(-count // every) - 1 for count in steps) * cameras
    else:
        # Exactly the observations the policy was given: every 4th step for the chunked ACT, every step but
        # the last one for the temporal ensemble.
        assert draws == inferences * cameras
        expected = sum(steps) if policy.spec.n_action_steps == 1 else sum(-(-count // 4) for count in steps)
        assert inferences == expected


def test_lockstep_batch_keeps_each_episode_its_own(policy: LeRobotPolicy) -> None:
    """Both seeds in lockstep, one infer_batch per step for the episodes due: each episode's record and
    chunks are the ones it gets alone (ACT is deterministic; Diffusion's batch noise is shared, so only
    its seeds and lengths are compared)."""
    from libs.evaluation.play.evaluated_episode import evaluate_lockstep
    from libs.sim.play.episode import EpisodeStart
    from libs.sim.play.lockstep import supports_batches

    assert supports_batches(policy)
    scene = SceneConfig.from_dict(policy.card.scene)
    scene = scene.with_cameras([camera.name for camera in policy.spec.cameras])
    envs = [SO101PickPlaceEnv(scene=scene, max_steps=EPISODE_STEPS) for _ in SEEDS]
    stats = policy.card.action_stats
    try:
        together = evaluate_lockstep(
            policy, envs, [EpisodeStart(seed) for seed in SEEDS], action_stats=stats, keep_chunks=True
        )
        alone = [
            evaluate_episode(policy, envs[0], seed, action_stats=stats, keep_chunks=True) for seed in SEEDS
        ]
    finally:
        for env in envs:
            env.close()
    for batched, single in zip(together, alone, strict=True):
        assert batched.record.seed == single.record.seed and batched.record.violation is None
        if policy.config.type == "diffusion":
            assert batched.record.steps == single.record.steps == EPISODE_STEPS
            continue
        # A batched matrix product may round differently in the last bits: floats are compared as close.
        single_record = single.record.to_dict()
        for key, value in batched.record.to_dict().items():
            if key in TIMING_FIELDS:
                continue
            if isinstance(value, float):
                assert value == pytest.approx(single_record[key], rel=1e-4, abs=1e-3), key
            else:
                assert value == single_record[key], key
        assert [when for when, _ in batched.chunks] == [when for when, _ in single.chunks]
        for (_, batched_chunk), (_, single_chunk) in zip(batched.chunks, single.chunks, strict=True):
            # Last-bit differences of the batched product grow through the closed loop (1e-5 degrees in
            # the first chunk, 0.3 by step 16 seen); another episode's chunk differs by tens of degrees.
            np.testing.assert_allclose(batched_chunk, single_chunk, rtol=1e-4, atol=1.0)  # degrees
        np.testing.assert_allclose(batched.chunks[0][1], single.chunks[0][1], rtol=1e-5, atol=1e-3)


def test_a_sweep_with_lockstep_envs_gives_each_seed_the_outcome_it_gets_alone(
    policy: LeRobotPolicy, tmp_path: Path
) -> None:
    """``--lockstep-envs 2`` in the sweep: every seed stored once, and (ACT, deterministic) with the outcome
    and length it has when played one at a time."""
    from libs.evaluation.sweep import EnvSettings, SweepConfig, evaluate

    uri = f"torch_lerobot:{policy.pretrained_dir.parent}"
    for envs in (1, 2):
        sweep = SweepConfig(
            policy=uri,
            episodes=3,
            env=EnvSettings(max_steps=EPISODE_STEPS, lockstep_envs=envs),
            serial=True,
            progress=False,
        )
        evaluate(sweep, tmp_path / f"envs{envs}", argv=["lockstep"])
        report = json.loads((tmp_path / f"envs{envs}" / "report.json").read_text())
        assert report["checkpoints"][0]["episodes"] == 3
    assert len(stored(tmp_path / "envs2")) == 3
    if policy.config.type != "diffusion":  # its batch shares one draw of noise: outcomes may differ
        assert stored(tmp_path / "envs2") == stored(tmp_path / "envs1")
