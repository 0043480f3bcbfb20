"""The tiny-backbone command: a backbone built on its own, reused by a second run, and a bad folder refused
in one line (``build_tiny_backbone`` itself is exercised by the training tests that train on one)."""

from __future__ import annotations

from pathlib import Path

from backends.torch_lerobot.tiny_backbones import TINY_BACKBONE_FILE, main, read_tiny_sizes


def test_the_command_builds_a_backbone_once_and_reuses_it(tmp_path: Path, capsys) -> None:
    backbone = tmp_path / "backbones" / "pi0"
    assert main(["--policy", "pi0", "--out", str(backbone)]) == 0
    sizes = read_tiny_sizes(backbone)
    assert sizes is not None and sizes["policy"] == "pi0" and sizes["scale"] == 1
    built = (backbone / TINY_BACKBONE_FILE).stat().st_mtime_ns
    # a second run (a rerun of the benchmark stage, or train's --tiny-backbone) finds it made
    assert main(["--policy", "pi0", "--out", str(backbone)]) == 0
    assert (backbone / TINY_BACKBONE_FILE).stat().st_mtime_ns == built
    assert f"tiny pi0 backbone in {backbone}" in capsys.readouterr().out


def test_a_folder_holding_something_else_is_one_line(tmp_path: Path, capsys) -> None:
    (tmp_path / "notes.txt").write_text("not a backbone")
    assert main(["--policy", "smolvla", "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: --tiny-backbone") and "holds no tiny smolvla backbone" in error
    assert len(error.strip().splitlines()) == 1
