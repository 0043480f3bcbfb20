import numpy as np
import pytest

from backends.jax_openpi import transforms as T
from backends.jax_openpi.norm_stats import NormStats, stats_of

RNG = np.random.default_rng(0)
HORIZON = 7


def env_sample(batch: tuple[int, ...] = ()) -> dict:
    state = np.concatenate(
        [RNG.uniform(-90, 90, (*batch, 5)), RNG.uniform(0, 100, (*batch, 1))], axis=-1
    ).astype(np.float32)
    actions = (state[..., None, :] + RNG.normal(0, 5, (*batch, HORIZON, 6))).astype(np.float32)
    return {
        "observation.images.overhead_cam": RNG.integers(0, 256, (*batch, 48, 64, 3), dtype=np.uint8),
        "observation.images.wrist_cam": RNG.integers(0, 256, (*batch, 48, 64, 3), dtype=np.uint8),
        "observation.state": state,
        "action": actions,
        "task": "put the block in the bowl",
    }


def norm_stats() -> dict[str, NormStats]:
    sample = T.so101_input_pipeline(
        base_camera="overhead_cam",
        wrist_camera="wrist_cam",
        norm_stats=None,
        use_quantiles=False,
        model_action_dim=32,
        image_size=None,
    )(env_sample((64,)))
    return {"state": stats_of(sample[T.STATE]), "actions": stats_of(sample[T.ACTIONS])}


def assert_round_trip(transform, sample: dict) -> None:
    restored = transform.inverse()(transform(sample))
    assert set(restored) == set(sample)
    for key, value in sample.items():
        if isinstance(value, np.ndarray):
            # exact at the precision the data is stored and fed to the model in
            dtype = np.float32 if value.dtype.kind == "f" else value.dtype
            restored_value = np.asarray(restored[key]).astype(dtype)
            np.testing.assert_array_equal(restored_value, value.astype(dtype), err_msg=key)
        else:
            assert restored[key] == value


def test_repack_renames_to_openpi_keys_and_back() -> None:
    sample = env_sample()
    repack = T.so101_repack("overhead_cam", "wrist_cam")
    packed = repack(sample)
    assert set(packed) == {T.BASE_IMAGE, T.WRIST_IMAGE, T.STATE, T.ACTIONS, T.PROMPT}
    assert_round_trip(repack, sample)


def test_repack_without_actions_at_inference_and_clear_error_for_missing_camera() -> None:
    sample = env_sample()
    del sample["action"]
    assert T.ACTIONS not in T.so101_repack("overhead_cam", "wrist_cam")(sample)
    with pytest.raises(T.TransformError, match=r"observation\.images\.front"):
        T.so101_repack("front", "wrist_cam")(sample)


def test_gripper_scale_round_trips_exactly() -> None:
    sample = T.so101_repack("overhead_cam", "wrist_cam")(env_sample((3,)))
    unit = T.gripper_to_unit()(sample)
    assert unit[T.STATE][..., 5].max() <= 1.0
    np.testing.assert_array_equal(unit[T.STATE][..., :5], sample[T.STATE][..., :5])
    assert_round_trip(T.gripper_to_unit(), sample)


def test_delta_actions_use_mask_and_round_trip_exactly() -> None:
    sample = T.so101_repack("overhead_cam", "wrist_cam")(env_sample((2,)))
    delta = T.DeltaActions()(sample)
    state, actions = sample[T.STATE], sample[T.ACTIONS]
    np.testing.assert_allclose(delta[T.ACTIONS][..., :5], actions[..., :5] - state[:, None, :5], rtol=1e-6)
    np.testing.assert_array_equal(delta[T.ACTIONS][..., 5], actions[..., 5])  # gripper stays absolute
    assert_round_trip(T.DeltaActions(), sample)


def test_pad_unpad_round_trips_exactly() -> None:
    sample = T.so101_repack("overhead_cam", "wrist_cam")(env_sample((2,)))
    padded = T.PadDimension(32, 6)(sample)
    assert padded[T.STATE].shape == (2, 32) and padded[T.ACTIONS].shape == (2, HORIZON, 32)
    assert not padded[T.ACTIONS][..., 6:].any()
    assert_round_trip(T.PadDimension(32, 6), sample)


@pytest.mark.parametrize("use_quantiles", [False, True])
def test_normalize_round_trips_exactly(use_quantiles: bool) -> None:
    stats = norm_stats()
    sample = T.gripper_to_unit()(T.so101_repack("overhead_cam", "wrist_cam")(env_sample((4,))))
    normalize = T.Normalize({T.STATE: stats["state"], T.ACTIONS: stats["actions"]}, use_quantiles)
    assert abs(normalize(sample)[T.STATE]).max() < 50
    assert_round_trip(normalize, sample)


def test_full_pipeline_round_trips_state_and_actions_exactly() -> None:
    pipeline = T.so101_input_pipeline(
        base_camera="overhead_cam",
        wrist_camera="wrist_cam",
        norm_stats=norm_stats(),
        use_quantiles=True,
        model_action_dim=32,
        image_size=(32, 32),
    )
    sample = env_sample((3,))
    model_sample = pipeline(sample)
    assert model_sample[T.BASE_IMAGE].shape == (3, 32, 32, 3)
    assert model_sample[T.ACTIONS].shape == (3, HORIZON, 32)
    outputs = {T.STATE: model_sample[T.STATE], T.ACTIONS: model_sample[T.ACTIONS]}
    restored = pipeline.inverse()(outputs)
    assert set(restored) == {"observation.state", "action"}
    np.testing.assert_array_equal(restored["action"].astype(np.float32), sample["action"])
    restored_state = restored["observation.state"].astype(np.float32)
    np.testing.assert_array_equal(restored_state, sample["observation.state"])


def test_resize_with_pad_keeps_aspect_ratio() -> None:
    image = np.full((48, 64, 3), 200, dtype=np.uint8)
    resized = T.ResizeImagesWithPad(32, 32)({T.BASE_IMAGE: image})[T.BASE_IMAGE]
    assert resized.shape == (32, 32, 3)
    assert resized[0].max() == 0 and resized[-1].max() == 0  # letterbox rows
    assert resized[16, 16, 0] == 200
    with pytest.raises(T.TransformError, match="uint8"):
        T.ResizeImagesWithPad(32, 32)({T.BASE_IMAGE: image.astype(np.float32)})


def state_based_sample(batch: tuple[int, ...] = ()) -> dict:
    sample = env_sample(batch)
    for key in [key for key in sample if key.startswith("observation.images.")]:
        del sample[key]
    sample["observation.environment_state"] = RNG.normal(0, 0.05, (*batch, 9)).astype(np.float32)
    return sample


def test_state_based_pipeline_reads_no_camera_normalises_the_environment_state_and_round_trips() -> None:
    before = T.so101_input_pipeline(
        base_camera=None,
        wrist_camera=None,
        norm_stats=None,
        use_quantiles=False,
        model_action_dim=32,
        image_size=None,
        environment_state=True,
    )(state_based_sample((64,)))
    stats = {
        "state": stats_of(before[T.STATE]),
        "actions": stats_of(before[T.ACTIONS]),
        "environment_state": stats_of(before[T.ENVIRONMENT_STATE], 0.01),
    }
    pipeline = T.so101_input_pipeline(
        base_camera=None,
        wrist_camera=None,
        norm_stats=stats,
        use_quantiles=False,
        model_action_dim=32,
        image_size=(32, 32),
        environment_state=True,
    )
    sample = state_based_sample((3,))
    model_sample = pipeline(sample)
    assert set(model_sample) == {T.STATE, T.ENVIRONMENT_STATE, T.ACTIONS, T.PROMPT}
    environment = stats["environment_state"]
    np.testing.assert_allclose(
        model_sample[T.ENVIRONMENT_STATE],
        (sample["observation.environment_state"] - environment.mean) / (environment.std + 1e-6),
        rtol=1e-5,
    )
    restored = pipeline.inverse()({T.STATE: model_sample[T.STATE], T.ACTIONS: model_sample[T.ACTIONS]})
    np.testing.assert_array_equal(restored["action"].astype(np.float32), sample["action"])
    # stats without the environment state cannot feed a config that reads it: one line naming the fix
    del stats["environment_state"]
    with pytest.raises(T.TransformError, match="compute_norm_stats"):
        T.so101_input_pipeline(
            base_camera=None,
            wrist_camera=None,
            norm_stats=stats,
            use_quantiles=False,
            model_action_dim=32,
            image_size=None,
            environment_state=True,
        )
