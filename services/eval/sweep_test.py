from __future__ import annotations

import argparse
import os
import signal
import time

import pytest

from services.eval import sweep
from services.eval.sweep import build_parser, parse_grid


def test_parse_grid() -> None:
    assert parse_grid("5x4") == (5, 4)
    assert parse_grid("3") == (3, 3)
    with pytest.raises(argparse.ArgumentTypeError, match="COLUMNSxROWS"):
        parse_grid("big")


def test_parser_defaults() -> None:
    arguments = build_parser().parse_args(["--policy", "scripted", "--out", "results/x"])
    assert (arguments.episodes, arguments.workers) == (10, None)
    assert arguments.ray_address is None and arguments.grid is None


def test_a_stop_that_a_c_extension_turns_into_its_own_error_is_still_a_stop(
    tmp_path, monkeypatch, capsys
) -> None:
    """SIGTERM landing inside the IK's QP solver came out as its ``ValueError``, not ``KeyboardInterrupt``."""

    def evaluate_inside_a_c_extension(*args: object, **kwargs: object) -> None:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises KeyboardInterrupt here
        except KeyboardInterrupt:
            raise ValueError("Buffer dtype mismatch, expected 'int' but got Python object") from None

    monkeypatch.setattr(sweep, "evaluate", evaluate_inside_a_c_extension)
    status = sweep.main(["--policy", "scripted", "--out", str(tmp_path / "sweep")])
    assert status == 128 + signal.SIGTERM
    assert "interrupted (SIGTERM)" in capsys.readouterr().out


def test_an_error_without_a_stop_is_not_called_an_interruption(tmp_path, monkeypatch) -> None:
    def evaluate_that_fails(*args: object, **kwargs: object) -> None:
        raise ValueError("a real bug")

    monkeypatch.setattr(sweep, "evaluate", evaluate_that_fails)
    with pytest.raises(ValueError, match="a real bug"):
        sweep.main(["--policy", "scripted", "--out", str(tmp_path / "sweep")])
