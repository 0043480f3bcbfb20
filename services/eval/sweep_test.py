from __future__ import annotations

import argparse

import pytest

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
