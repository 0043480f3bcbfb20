"""``./pants run services/eval:whiskers``: what a user gets on disk for one episode; one-line bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.eval.whiskers import main


def test_one_episode_writes_video_summary_recording_and_diagnostics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--policy", "scripted", "--seed", "2", "--max-steps", "20", "--rrd", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    folder = tmp_path / "seed_2"
    for pattern in ("*.mp4", "*.png", "*.rrd", "diagnostics.json"):
        files = list(folder.glob(pattern))
        assert files and all(f.stat().st_size > 0 for f in files), f"no {pattern} in {folder}"
    diagnostics = json.loads((folder / "diagnostics.json").read_text())
    assert "seed 2:" in printed and diagnostics


def test_unknown_policy_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--policy", "nonsense", "--out", str(tmp_path), "--threads", "1"]) == 2
    printed = capsys.readouterr()
    assert printed.err.strip().count("\n") == 0 and "unknown policy backend" in printed.err
    # the threads are decided (here: set) and printed before the policy's stack is imported
    assert printed.out.startswith("threads: 1 per model (set by --threads; ")
