"""The registry builds policies from strings and says which Pants target to run when a stack is absent."""

from __future__ import annotations

import pytest

from libs.policy_api.registry import PolicyLoadError, make_policy


@pytest.mark.parametrize(
    ("uri", "target"),
    [
        ("torch_lerobot:/runs/act", "services/eval:sweep-torch_lerobot"),
        ("jax_openpi:/runs/jax", "services/eval:sweep-jax_openpi"),
    ],
)
def test_a_backend_missing_from_this_resolve_names_the_target_to_run(uri: str, target: str) -> None:
    # This test runs in the sim resolve, which has neither torch nor jax.
    with pytest.raises(PolicyLoadError) as caught:
        make_policy(uri)
    message = str(caught.value)
    assert "not installed in this resolve" in message and f"./pants run {target}" in message
    assert "\n" not in message


def test_an_unknown_backend_lists_the_known_ones() -> None:
    with pytest.raises(PolicyLoadError, match="unknown policy backend 'torch'.*jax_openpi, remote, scripted"):
        make_policy("torch:/runs/act")
