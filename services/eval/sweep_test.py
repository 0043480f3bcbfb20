from __future__ import annotations

import argparse
import os
import signal
import time

import pytest

from libs.compute_threads import ALL_VARIABLES
from libs.evaluation.sweep import SweepError
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


@pytest.mark.parametrize(
    ("flags", "line"),
    [
        (["--serial", "--threads", "1"], "threads: 1 per model (set by --threads; "),
        (["--serial", "--threads", "3"], "threads: 3 per model (set by --threads; "),
        (["--serial"], " per model ("),  # decided: cores given, busy ones
        (["--workers", "3"], " per model, 3 models ("),  # one model per local Ray worker
        (["--ray-address", "head:6379", "--threads", "2"], "threads: 2 per Ray worker (each holds one CPU"),
    ],
)
def test_the_sweep_prints_its_threads_and_sets_them_before_any_policy_loads(
    tmp_path, monkeypatch, capsys, flags: list[str], line: str
) -> None:
    for variable in ALL_VARIABLES:
        monkeypatch.setenv(variable, "")  # remembered, so that the test's values do not outlive it
        monkeypatch.delenv(variable)
    seen: dict[str, str] = {}

    def evaluate_seeing_the_threads(*args: object, **kwargs: object) -> None:
        seen.update(os.environ)
        raise SweepError("stopped after the threads were set")

    monkeypatch.setattr(sweep, "evaluate", evaluate_seeing_the_threads)
    assert sweep.main(["--policy", "scripted", "--out", str(tmp_path / "sweep"), *flags]) == 2
    printed = capsys.readouterr().out
    assert printed.startswith("threads: ") and line in printed, printed
    assert printed.endswith("; --threads N overrides)\n") or "--threads;" in printed
    threads = printed.split()[1]
    assert seen["OMP_NUM_THREADS"] == seen["MKL_NUM_THREADS"] == seen["NPROC"] == threads


def test_threads_below_one_are_one_line(tmp_path, capsys) -> None:
    assert sweep.main(["--policy", "scripted", "--serial", "--threads", "0", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --threads 0: give at least 1 (or leave it out to let the lab decide)"
    )


def test_an_error_without_a_stop_is_not_called_an_interruption(tmp_path, monkeypatch) -> None:
    def evaluate_that_fails(*args: object, **kwargs: object) -> None:
        raise ValueError("a real bug")

    monkeypatch.setattr(sweep, "evaluate", evaluate_that_fails)
    with pytest.raises(ValueError, match="a real bug"):
        sweep.main(["--policy", "scripted", "--out", str(tmp_path / "sweep")])
