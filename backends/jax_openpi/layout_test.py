"""The jax_openpi layout, as its backend registers it: ``checkpoints/NNNNNN/config.json``."""

from __future__ import annotations

from pathlib import Path

from backends.jax_openpi.backend import find_checkpoints


def test_a_run_expands_to_its_step_folders(tmp_path: Path) -> None:
    checkpoint = tmp_path / "pi" / "checkpoints" / "000400"
    (checkpoint / "params").mkdir(parents=True)
    (checkpoint / "config.json").write_text("{}")
    assert [(f.checkpoint_id, f.step) for f in find_checkpoints(tmp_path / "pi")] == [("000400", 400)]
    (only,) = find_checkpoints(checkpoint)
    assert only.path == checkpoint and only.step == 400
