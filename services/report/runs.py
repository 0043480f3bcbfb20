"""The runs under a results folder: every sweep, quickstart and learning-curve run, found by its files.

- a sweep: a folder with the per-episode store (``episodes.sqlite``) or a sweep's ``report.json``;
- a quickstart: ``summary.json`` (``services/quickstart/summary.py``) beside its ``eval/<policy>/`` sweeps;
- learning curves: ``cells/*.json`` and ``learning_curves.md`` (``benchmarks/learning_curves.py``).

The walk never follows a symbolic link (a link out of the folder is not listed, and not served either) and
does not descend into a sweep, nor into the bulky folders of a run (datasets, checkpoints, whiskers).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from libs.report_html.folder import is_sweep_folder

#: Folders never searched for runs (a run's own outputs: datasets, trained checkpoints, pictures).
SKIPPED = frozenset(
    {"data", "runs", "checkpoints", "whiskers", "plots", "scenes", "node_modules", "__pycache__"}
)
#: How deep below the results folder runs are looked for.
MAX_DEPTH = 6


@dataclass(frozen=True)
class Run:
    kind: str  # "sweep" | "quickstart" | "learning curves"
    #: relative to the results folder, "/"-separated ("" for the folder itself)
    path: str


def find_runs(root: Path) -> list[Run]:
    runs = []
    root = Path(root)
    for folder, dirs, files in os.walk(root, followlinks=False):
        here = Path(folder)
        relative = here.relative_to(root).as_posix()
        relative = "" if relative == "." else relative
        depth = 0 if not relative else relative.count("/") + 1
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".")
            and d not in SKIPPED
            and depth < MAX_DEPTH
            and not (here / d).is_symlink()
        )
        if is_sweep_folder(here):
            runs.append(Run("sweep", relative))
            dirs[:] = []  # a sweep's sub-folders are its own outputs
            continue
        if "summary.json" in files and (here / "eval").is_dir():
            runs.append(Run("quickstart", relative))
        if (here / "cells").is_dir() and (
            "learning_curves.md" in files or any((here / "cells").glob("*.json"))
        ):
            runs.append(Run("learning curves", relative))
    return runs


def read_cells(folder: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """A learning-curve run's finished cells, and one message per cell file that cannot be read."""
    cells, errors = [], []
    for path in sorted((folder / "cells").glob("*.json")):
        try:
            cell = json.loads(path.read_text())
            if not isinstance(cell, dict):
                raise ValueError("not an object")
            float(cell["success_rate"])
            int(cell["demos"])
            str(cell["policy"])
            cells.append(cell)
        except (OSError, ValueError, KeyError, TypeError) as error:
            errors.append(f"cells/{path.name} cannot be read ({error!r}): its cell is left out")
    cells.sort(key=lambda c: (str(c["policy"]), int(c["demos"])))
    return cells, errors
