"""The ``--grid`` plan: block positions on a grid instead of seeded layouts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GridSpec:
    """``--grid``: block positions on a columns × rows grid over ``region_xy`` ((x range), (y range))."""

    columns: int
    rows: int
    region_xy: tuple[tuple[float, float], tuple[float, float]]
