from __future__ import annotations

import numpy as np
import pytest

from libs.policy_api.contracts import ContractViolation, check_observation
from libs.policy_api.lazy_observation import LazyImage, LazyObservation, array_signature
from libs.policy_api.types import CameraInput, PolicySpec


def _observation(drawn: list[str]) -> LazyObservation:
    def draw(name: str, shape: tuple[int, ...]) -> LazyImage:
        def render() -> np.ndarray:
            drawn.append(name)
            return np.full(shape, 7, np.uint8)

        return LazyImage(render, shape, np.dtype(np.uint8))

    return LazyObservation(
        {"observation.state": np.zeros(6, np.float32), "task": "x"},
        {
            "observation.images.overhead": draw("overhead", (4, 5, 3)),
            "observation.images.wrist": draw("wrist", (4, 5, 3)),
        },
    )


def test_keys_membership_and_signatures_draw_nothing() -> None:
    drawn: list[str] = []
    observation = _observation(drawn)
    images = {"observation.images.overhead", "observation.images.wrist"}
    assert set(observation) == {"observation.state", "task", *images}
    assert len(observation) == 4 and "observation.images.wrist" in observation and "other" not in observation
    assert array_signature(observation, "observation.images.wrist") == ((4, 5, 3), np.dtype(np.uint8))
    check_observation(observation, PolicySpec(cameras=(CameraInput("wrist", 4, 5),)))
    assert drawn == []


def test_an_image_is_drawn_once_when_first_read() -> None:
    drawn: list[str] = []
    observation = _observation(drawn)
    first = observation["observation.images.wrist"]
    assert observation["observation.images.wrist"] is first and drawn == ["wrist"]
    assert observation.undrawn_keys == ("observation.images.overhead",)
    # reading while iterating
    assert dict(observation.items())["observation.images.overhead"].shape == (4, 5, 3)
    plain = observation.materialize()
    assert drawn == ["wrist", "overhead"] and isinstance(plain, dict) and plain["task"] == "x"
    with pytest.raises(KeyError):
        observation["observation.images.side"]


def test_contract_checks_see_the_declared_size_without_drawing() -> None:
    drawn: list[str] = []
    with pytest.raises(ContractViolation, match="wrist is 4×5×3 but the policy was trained on 8×10"):
        check_observation(_observation(drawn), PolicySpec(cameras=(CameraInput("wrist", 8, 10),)))
    assert drawn == []
