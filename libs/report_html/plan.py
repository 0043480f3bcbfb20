"""``plan.json``: what a sweep set out to do, written when it starts (and again on every resume).

The store says what is done; the plan says what was asked: every checkpoint with the policy string that
loads it (so a page can print the command that replays one episode), the seeds, the ``--grid`` cells and
the number of episodes planned (so a running sweep's page shows *done of planned*). Written by
``libs.evaluation.sweep.evaluate`` before its first episode, read by the pages.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PLAN_JSON = "plan.json"


@dataclass(frozen=True)
class PlannedCheckpoint:
    checkpoint_id: str
    #: The policy string that loads this checkpoint alone (``torch_lerobot:runs/act/checkpoints/004000``).
    policy_uri: str
    step: int | None


@dataclass(frozen=True)
class SweepPlan:
    #: The checkpoints; each also plays under every perturbation arm in ``arms``, on its own seeds.
    checkpoints: list[PlannedCheckpoint]
    arms: list[str]
    #: checkpoint id -> its seeds
    seeds: dict[str, list[int]]
    #: "checkpoint id/seed" -> (column, row) in --grid mode
    cells: dict[str, list[int]]
    planned_episodes: int
    written: str

    def keys(self) -> set[tuple[str, str, int]]:
        """(checkpoint id, arm, seed) of every planned episode ("" for the controls)."""
        return {
            (checkpoint, arm, seed)
            for checkpoint, seeds in self.seeds.items()
            for arm in ("", *self.arms)
            for seed in seeds
        }

    def checkpoint(self, checkpoint_id: str) -> PlannedCheckpoint | None:
        return next((c for c in self.checkpoints if c.checkpoint_id == checkpoint_id), None)

    def cell(self, checkpoint_id: str, seed: int) -> list[int] | None:
        return self.cells.get(f"{checkpoint_id}/{seed}")


def write_sweep_plan(out_dir: str | Path, tasks: Iterable[Any]) -> Path:
    """Writes ``plan.json`` from a sweep's episode tasks (each with ``.target`` — ``checkpoint_id``,
    ``policy_uri``, ``step`` — ``.arm``, ``.seed`` and ``.grid_cell``), atomically. An arm's task plays its
    checkpoint on the checkpoint's seeds: the plan names the arms once."""
    checkpoints: dict[str, dict[str, Any]] = {}
    arms: dict[str, None] = {}
    seeds: dict[str, list[int]] = {}
    cells: dict[str, list[int]] = {}
    count = 0
    for task in tasks:
        count += 1
        if task.arm:
            arms.setdefault(str(task.arm))
            continue
        target = task.target
        identifier = str(target.checkpoint_id)
        checkpoints.setdefault(
            identifier,
            {"checkpoint_id": identifier, "policy_uri": str(target.policy_uri), "step": target.step},
        )
        seeds.setdefault(identifier, []).append(int(task.seed))
        if getattr(task, "grid_cell", None) is not None:
            cells[f"{identifier}/{task.seed}"] = [int(v) for v in task.grid_cell]
    data = {
        "checkpoints": list(checkpoints.values()),
        "arms": list(arms),
        "seeds": seeds,
        "cells": cells,
        "planned_episodes": count,
        "written": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    path = Path(out_dir) / PLAN_JSON
    partial = path.with_name(f".{PLAN_JSON}.{os.getpid()}")
    partial.write_text(json.dumps(data, indent=1) + "\n")
    partial.replace(path)  # a reader sees the old plan or the new one, never half of one
    return path


def read_sweep_plan(folder: str | Path) -> SweepPlan | None:
    """The folder's plan; None when it has none (a sweep from before plans); ValueError when unreadable."""
    path = Path(folder) / PLAN_JSON
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise ValueError(f"{PLAN_JSON} cannot be read ({error})") from None
    try:
        # A plan from before arms were a field listed each arm as a checkpoint of its own, with its
        # "control" and "arm" named: its arms are read from those fields, its seeds are its control's.
        entries = data["checkpoints"]
        old_arms = [c for c in entries if c.get("control") is not None]
        arm_ids = {str(c["checkpoint_id"]) for c in old_arms}
        arms = list(dict.fromkeys([*map(str, data.get("arms") or []), *(str(c["arm"]) for c in old_arms)]))
        checkpoints = [
            PlannedCheckpoint(
                str(c["checkpoint_id"]),
                str(c["policy_uri"]),
                None if c.get("step") is None else int(c["step"]),
            )
            for c in entries
            if str(c["checkpoint_id"]) not in arm_ids
        ]
        seeds = {str(k): [int(s) for s in v] for k, v in data["seeds"].items() if str(k) not in arm_ids}
        cells = {str(k): [int(x) for x in v] for k, v in (data.get("cells") or {}).items()}
        return SweepPlan(
            checkpoints, arms, seeds, cells, int(data["planned_episodes"]), str(data.get("written", ""))
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ValueError(f"{PLAN_JSON} is not a sweep plan ({error!r})") from None
