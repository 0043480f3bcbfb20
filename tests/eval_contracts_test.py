"""One test per contract check: a policy commits exactly that mistake in the real env, and the harness
stops with a message that names the fix (instead of silently scoring 0%)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from libs.evaluation.plan.checkpoints import decide_scene, plan_one_checkpoint
from libs.evaluation.play.evaluated_episode import evaluate_episode
from libs.evaluation.sweep import EnvSettings, EpisodeTask, EpisodeWorker
from libs.policy_api.card import CheckpointCard
from libs.policy_api.contracts import ContractViolation, EpisodeGuardedPolicy
from libs.policy_api.registry import register_backend
from libs.policy_api.types import CameraInput, PolicySpec
from libs.sim.env import HOME_JOINTS, SO101PickPlaceEnv
from libs.sim.scene_config import SceneConfig

MAX_STEPS = 12


def make_env(cameras: tuple[str, ...] = (), **scene_changes) -> SO101PickPlaceEnv:
    scene = dataclasses.replace(SceneConfig(), **scene_changes).with_cameras(cameras)
    return SO101PickPlaceEnv(scene=scene, max_steps=MAX_STEPS)


class HoldPolicy:
    """Holds the home pose; subclasses commit one mistake each."""

    def __init__(self, cameras: tuple[CameraInput, ...] = (), chunk_length: int = 4) -> None:
        self._spec = PolicySpec(cameras=cameras, chunk_length=chunk_length, n_action_steps=chunk_length)
        self.resets = 0

    @property
    def spec(self) -> PolicySpec:
        return self._spec

    def reset(self) -> None:
        self.resets += 1

    def infer(self, observation) -> np.ndarray:
        return np.repeat(HOME_JOINTS[None, :], self._spec.chunk_length, axis=0).astype(np.float32)


def test_wrong_camera_key_names_the_cameras_provided() -> None:
    policy = HoldPolicy(cameras=(CameraInput("front", 96, 128),))
    with pytest.raises(ContractViolation, match=r"no 'observation.images.front'.*images.overhead"):
        evaluate_episode(policy, make_env(("overhead",)), 0)


def test_depth_suffix_in_camera_name_is_refused() -> None:
    # The researcher's bug: passing "overhead_depth" where the base camera name was expected.
    policy = HoldPolicy(cameras=(CameraInput("overhead_depth", 96, 128, "depth"),))
    with pytest.raises(ContractViolation, match=r"CameraInput\(name='overhead', modality='depth'\)"):
        evaluate_episode(policy, make_env(("overhead",)), 0)


def test_depth_expected_but_camera_not_declared_depth() -> None:
    policy = HoldPolicy(cameras=(CameraInput("overhead", 96, 128, "depth"),))
    with pytest.raises(ContractViolation, match="declare modality 'depth'"):
        evaluate_episode(policy, make_env(("overhead",)), 0)


def test_image_size_differs_from_training() -> None:
    policy = HoldPolicy(cameras=(CameraInput("overhead", 480, 640),))
    with pytest.raises(ContractViolation, match=r"96×128×3 but the policy was trained on 480×640"):
        evaluate_episode(policy, make_env(("overhead",)), 0)


class StaleQueuePolicy(HoldPolicy):
    """Plans a chunk per episode and serves it from a queue (like ACT's select_action); only reset() clears
    it. Without a reset the second episode would start by replaying the first episode's leftover plan."""

    def __init__(self) -> None:
        super().__init__(chunk_length=1)
        self.queue: list[np.ndarray] = []
        self.first_actions: list[np.ndarray] = []
        self._episode_start = True

    def reset(self) -> None:
        super().reset()
        self.queue.clear()
        self._episode_start = True

    def infer(self, observation) -> np.ndarray:
        if not self.queue:
            # A plan of 50 steps that depends on the observation it was made from.
            start = np.asarray(observation["observation.state"], dtype=np.float32)
            self.queue = [start + 0.1 * i for i in range(50)]
        action = self.queue.pop(0)
        if self._episode_start:
            self.first_actions.append(action.copy())
            self._episode_start = False
        return action[None, :]


def test_reset_runs_before_every_episode_so_no_stale_queue_leaks() -> None:
    env = make_env()
    policy = StaleQueuePolicy()
    guarded = EpisodeGuardedPolicy(policy)
    for _ in range(2):
        evaluate_episode(guarded, env, 1)
    assert policy.resets == 2 and guarded.episodes_started == 2
    # Same seed, fresh plan each time: the second episode's first action is the first episode's.
    np.testing.assert_array_equal(policy.first_actions[0], policy.first_actions[1])


def test_infer_outside_an_episode_is_refused_and_reset_is_required() -> None:
    guarded = EpisodeGuardedPolicy(HoldPolicy())
    with pytest.raises(ContractViolation, match="call start_episode"):
        guarded.infer({})

    class NoReset:
        spec = HoldPolicy().spec

        def infer(self, observation):
            return np.zeros((1, 6), np.float32)

    with pytest.raises(ContractViolation, match=r"has no reset\(\)"):
        EpisodeGuardedPolicy(NoReset())


class NaNPolicy(HoldPolicy):
    def infer(self, observation) -> np.ndarray:
        chunk = super().infer(observation)
        chunk[2, 1] = np.nan
        return chunk


def test_non_finite_actions_stop_the_episode_as_a_violation() -> None:
    record = evaluate_episode(NaNPolicy(), make_env(), 0).record
    assert record.outcome == "contract_violation" and record.steps == 0
    assert "non-finite actions (NaN/inf at chunk steps [2])" in record.violation
    assert "normalisation stats" in record.violation


class FlatActionPolicy(HoldPolicy):
    def infer(self, observation) -> np.ndarray:
        return HOME_JOINTS.copy()  # forgot the time axis


def test_wrong_action_shape() -> None:
    with pytest.raises(ContractViolation, match=r"shape \(6,\), expected \(T, 6\)"):
        evaluate_episode(FlatActionPolicy(), make_env(), 0)


class OutOfRangePolicy(HoldPolicy):
    def infer(self, observation) -> np.ndarray:
        chunk = super().infer(observation)
        chunk[:, 1] = -2455.0  # de-normalised with the wrong stats
        return chunk


def test_actions_far_outside_joint_limits_stop_the_episode_as_a_violation() -> None:
    record = evaluate_episode(OutOfRangePolicy(), make_env(), 0).record
    assert record.outcome == "contract_violation"
    assert "joint action 1 = -2455.0 at chunk step 0 is outside the joint range" in record.violation


class OvershootingGripperPolicy(HoldPolicy):
    """An undertrained but correctly de-normalised policy: gripper slightly below its 0–100 range."""

    def infer(self, observation) -> np.ndarray:
        chunk = super().infer(observation)
        chunk[:, 5] = -15.0
        return chunk


def test_small_overshoot_is_behaviour_not_a_violation() -> None:
    record = evaluate_episode(OvershootingGripperPolicy(), make_env(), 0).record
    assert record.violation is None and record.steps == MAX_STEPS


class WildHorizonPolicy(HoldPolicy):
    """Executes 4 safe steps of each 8-step chunk; the far end of the chunk, re-planned before it runs,
    wanders out of range (an undertrained flow policy's last steps)."""

    def __init__(self) -> None:
        super().__init__(chunk_length=8)
        self._spec = PolicySpec(cameras=(), chunk_length=8, n_action_steps=4)

    def infer(self, observation) -> np.ndarray:
        chunk = super().infer(observation)
        chunk[6:, 5] = -60.0
        return chunk


def test_out_of_range_steps_that_are_never_executed_do_not_stop_the_episode() -> None:
    record = evaluate_episode(WildHorizonPolicy(), make_env(), 0).record
    assert record.violation is None and record.steps == MAX_STEPS


#: LeRobot-layout action stats of a joint-space dataset (degrees, gripper 0–100).
ACTION_STATS = {
    "mean": [2.0, -20.0, 35.0, 70.0, 1.0, 45.0],
    "std": [15.0, 18.0, 20.0, 8.0, 5.0, 40.0],
    "min": [-40.0, -70.0, 10.0, 55.0, -10.0, 0.0],
    "max": [40.0, 10.0, 90.0, 95.0, 10.0, 100.0],
}


class NeverDenormalizedPolicy(HoldPolicy):
    """Returns the model's raw output: normalised values in about ±2."""

    @property
    def card(self) -> CheckpointCard:
        return CheckpointCard(stats={"action": ACTION_STATS})

    def infer(self, observation) -> np.ndarray:
        rng = np.random.default_rng(0)
        return rng.uniform(-1.5, 1.5, size=(self.spec.chunk_length, 6)).astype(np.float32)


def test_actions_never_denormalized() -> None:
    with pytest.raises(ContractViolation, match="never de-normalised"):
        evaluate_episode(NeverDenormalizedPolicy(), make_env(), 0, action_stats=ACTION_STATS)


def test_denormalized_home_pose_is_not_flagged() -> None:
    record = evaluate_episode(HoldPolicy(), make_env(), 0, action_stats=ACTION_STATS).record
    assert record.steps == MAX_STEPS


class TinyStdPolicy(HoldPolicy):
    """Normalises pixels with std ≈ 0.002 (stats computed on a nearly constant image)."""

    def infer(self, observation) -> np.ndarray:
        image = np.asarray(observation["observation.images.overhead"], dtype=np.float32) / 255.0
        self._normalized = {"observation.images.overhead": (image - 0.5) / 0.002}
        return super().infer(observation)

    def last_normalized_inputs(self):
        return self._normalized


def test_normalized_inputs_blown_up_by_tiny_std() -> None:
    policy = TinyStdPolicy(cameras=(CameraInput("overhead", 96, 128),))
    with pytest.raises(ContractViolation, match=r"'observation.images.overhead' reaches ±\d+ .* std .* tiny"):
        evaluate_episode(policy, make_env(("overhead",)), 0)


class TrainedWithOtherFovPolicy(HoldPolicy):
    """Its checkpoint's scene.json has a 58° overhead camera; the eval scene has 52°."""

    def __init__(self) -> None:
        super().__init__(cameras=(CameraInput("overhead", 96, 128),))
        overhead = dataclasses.replace(SceneConfig().camera("overhead"), fovy_deg=58.0)
        self._scene = dataclasses.replace(SceneConfig(), cameras=(overhead,)).to_dict()

    @property
    def card(self) -> CheckpointCard:
        return CheckpointCard(scene=self._scene)


def test_scene_camera_differs_from_checkpoint_scene(tmp_path) -> None:
    register_backend(
        "test_fov_mismatch",
        lambda argument: TrainedWithOtherFovPolicy(),
        read_card=lambda argument: TrainedWithOtherFovPolicy().card,
    )
    # Evaluating in the bench scene (52°) a policy trained with a 58° overhead camera:
    bench_scene = str(SceneConfig().save(tmp_path / "scene.json"))
    task = EpisodeTask(plan_one_checkpoint("test_fov_mismatch", bench_scene), seed=0)
    worker = EpisodeWorker(EnvSettings(scene_path=bench_scene, max_steps=MAX_STEPS))
    with pytest.raises(ContractViolation, match=r"camera 'overhead' fovy_deg: 52 vs 58.*--scene"):
        worker.run(task)
    # Without --scene the checkpoint is evaluated in its own training scene.
    task = EpisodeTask(plan_one_checkpoint("test_fov_mismatch"), seed=0)
    record = EpisodeWorker(EnvSettings(max_steps=MAX_STEPS)).run(task)
    assert record.steps == MAX_STEPS


def test_a_camera_the_scene_lacks_names_the_scenes_cameras(tmp_path) -> None:
    from libs.evaluation.play.episode_worker import make_env as make_sweep_env

    scene = SceneConfig().with_cameras(["wrist"]).save(tmp_path / "wrist_only.json")
    with pytest.raises(ContractViolation) as raised:
        make_sweep_env(EnvSettings(), "joint", ("overhead", "wrist"), decide_scene(None, scene))
    message = str(raised.value)
    assert message.startswith(f"the policy reads camera(s) overhead but the scene {scene} has wrist")
    assert "\n" not in message
