from __future__ import annotations

from pathlib import Path

import pytest

from libs.evaluation.checkpoints import CheckpointNotFoundError, expand_policy


def lerobot_run(root: Path, steps: list[int]) -> Path:
    for step in steps:
        model = root / "checkpoints" / f"{step:06d}" / "pretrained_model"
        model.mkdir(parents=True)
        (model / "config.json").write_text("{}")
    (root / "checkpoints" / "last").symlink_to(root / "checkpoints" / f"{steps[-1]:06d}")
    return root


def test_lerobot_run_expands_to_each_checkpoint_once(tmp_path: Path) -> None:
    run = lerobot_run(tmp_path / "act", [20000, 5000, 10000])
    targets = expand_policy(f"torch_lerobot:{run}")
    assert [t.step for t in targets] == [5000, 10000, 20000]  # `last` is not counted twice
    assert [t.checkpoint_id for t in targets] == ["005000", "010000", "020000"]
    assert targets[0].policy_uri == f"torch_lerobot:{run}/checkpoints/005000"
    assert expand_policy(f"torch_lerobot:{run}/checkpoints") == targets


def test_single_checkpoint_in_either_layout(tmp_path: Path) -> None:
    run = lerobot_run(tmp_path / "act", [3000])
    (only,) = expand_policy(f"torch_lerobot:{run}/checkpoints/003000/pretrained_model")
    assert (only.checkpoint_id, only.step) == ("003000", 3000)
    jax_checkpoint = tmp_path / "pi" / "checkpoints" / "000400"
    (jax_checkpoint / "params").mkdir(parents=True)
    (jax_checkpoint / "config.json").write_text("{}")
    assert [t.step for t in expand_policy(f"jax_openpi:{tmp_path / 'pi'}")] == [400]
    (only,) = expand_policy(f"jax_openpi:{jax_checkpoint}")
    assert only.policy_uri == f"jax_openpi:{jax_checkpoint}" and only.step == 400


def test_pathless_backends_and_missing_paths(tmp_path: Path) -> None:
    (scripted,) = expand_policy("scripted")
    assert scripted.checkpoint_id == "scripted" and scripted.step is None
    with pytest.raises(CheckpointNotFoundError, match="does not exist"):
        expand_policy(f"torch_lerobot:{tmp_path / 'nope'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointNotFoundError, match="no checkpoints under"):
        expand_policy(f"torch_lerobot:{tmp_path / 'empty'}")


def test_an_unknown_backend_is_named_before_its_path(tmp_path: Path) -> None:
    from libs.policy_api.registry import PolicyLoadError

    with pytest.raises(PolicyLoadError) as raised:
        expand_policy(f"frobnicate:{tmp_path / 'nowhere'}")
    assert str(raised.value).startswith("unknown policy backend 'frobnicate'")
    assert "does not exist" not in str(raised.value)
