"""A part of a sweep's report that a room below the report writes (perturbation arms, the sequential
decision, whiskers): the report places it; the writer does not import the report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ReportSection:
    """A part of the report another package writes (the whisker diagnostics): ``title`` heads ``markdown``
    in report.md (before the plots); ``data`` goes under ``key`` in report.json."""

    key: str
    title: str
    markdown: str
    data: Any
