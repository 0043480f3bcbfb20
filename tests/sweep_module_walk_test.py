"""Following a sweep's config from the command line to the report enters each module once (issue 29).

The sweep's driver — ``services/eval/sweep.py`` (``main``) and ``libs/evaluation/sweep.py`` (``evaluate``
and its helpers) — runs a tiny sweep in this process (serial: the scripted expert against a degraded copy,
each with a perturbation arm, ``--until-decided`` in rounds of one seed, so two rounds, and a whisker
episode each) under ``sys.setprofile``, which records, in order, every call a driver frame makes into a
project module. The walk must read config → plan → schedule → rounds → stats → report (``ROOMS``):

- every module the driver calls belongs to a room, and the rooms are entered in that order: once the walk
  has moved on to a room, no module of an earlier room is entered again;
- the one cycle, modelled as the room ``rounds``, is the schedule's round loop. The schedule chooses a
  round from what the store holds (``rounds()`` is resumed once per round, and once more to end), the play
  room plays it, the results room stores each episode before the next round is chosen: the schedule, play
  and results modules alternate there by design. The loop opens with the results folder (the command, the
  plan.json the pages read, the store) and closes with what the rounds concluded: the stored records, the
  schedule's verdict, and the sections that play episodes of their own (input-drift reference episodes,
  whiskers). The schedule module is also the ``schedule`` room's (``schedule_for``), which the loop's first
  round continues;
- outside the round loop, each module of the sweep's own rooms (``libs.evaluation``, ``libs.report_html``)
  is entered in one unbroken run: the walk never leaves one and comes back to it.

Reading a value's property (``EpisodeTask.key``, ``EpisodeRecord.is_control``) or building a dataclass value
is reading data, not entering a room's logic, and is not counted. The command's flag helpers
(``libs.config_flags``, ``libs.compute_threads``) alternate while the parser is built: one room, config.
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import FrameType
from typing import Any

import libs.evaluation.sweep as sweep_library
from libs.sim.perturbations import Perturbation
from libs.sim.scene_config import SceneConfig
from services.eval import sweep as sweep_command

#: The rooms in the order a sweep walks them, each with the modules it holds (a name ending in "." holds
#: every module below it).
ROOMS: list[tuple[str, tuple[str, ...]]] = [
    ("config", ("libs.config_flags", "libs.compute_threads", "libs.evaluation.plan.sweep_config")),
    ("plan", ("libs.evaluation.plan.sweep_plan", "libs.evaluation.plan.checkpoints")),
    ("schedule", ("libs.evaluation.plan.schedule",)),
    (
        "rounds",
        (
            "libs.evaluation.plan.schedule",
            "libs.evaluation.play.",
            "libs.evaluation.results.",
            "libs.report_html.plan",
        ),
    ),
    ("stats", ("libs.evaluation.stats.",)),
    ("report", ("libs.evaluation.report.", "libs.report_html.sweep_page")),
]
DRIVER_FILES = {sweep_command.__file__, sweep_library.__file__}
PROJECT_PACKAGES = ("libs", "services", "backends")
#: Modules whose entry order is checked one by one outside the round loop: the sweep's own rooms.
SWEEP_ROOMS = ("libs.evaluation.", "libs.report_html.")


@dataclass(frozen=True)
class Entry:
    """One call a driver frame made into a project module."""

    module: str
    function: str


def record_driver_calls(argv: list[str]) -> list[Entry]:
    """The project calls the sweep driver makes while ``sweep main(argv)`` runs, in order."""
    entries: list[Entry] = []

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        caller = frame.f_back
        if event != "call" or caller is None or caller.f_code.co_filename not in DRIVER_FILES:
            return
        module = str(frame.f_globals.get("__name__", ""))
        if frame.f_code.co_filename in DRIVER_FILES or module.split(".")[0] not in PROJECT_PACKAGES:
            return
        entries.append(Entry(module, frame.f_code.co_qualname))

    sys.setprofile(profile)
    try:
        assert sweep_command.main(argv) == 0
    finally:
        sys.setprofile(None)
    return [entry for entry in entries if not reads_a_value(entry)]


def reads_a_value(entry: Entry) -> bool:
    """A property read, or a dataclass's generated method (building or comparing a value)."""
    parts = entry.function.split(".")
    if "<locals>" in parts:
        return True
    owner: Any = sys.modules[entry.module]
    for part in parts[:-1]:
        owner = getattr(owner, part)
    found = inspect.getattr_static(owner, parts[-1], None)
    return isinstance(found, property | cached_property)


def holds(room_modules: tuple[str, ...], module: str) -> bool:
    return any(module == name or (name.endswith(".") and module.startswith(name)) for name in room_modules)


def rooms_walked(entries: list[Entry]) -> list[str]:
    """The room of each entry: the first room, from the one the walk is in on, that holds its module; a
    module no room from there holds is a walk going back, named with where it came back from."""
    at, walked = 0, []
    for index, entry in enumerate(entries):
        later = [i for i in range(at, len(ROOMS)) if holds(ROOMS[i][1], entry.module)]
        assert later, (
            f"{entry.module}.{entry.function} (call {index}) is entered after the walk moved on to the "
            f"{ROOMS[at][0]} room: {[e.function for e in entries[max(0, index - 4) : index + 1]]}"
        )
        at = later[0]
        walked.append(ROOMS[at][0])
    return walked


def scene_with_an_arm(folder: Path) -> str:
    scene = SceneConfig(perturbations=(Perturbation("shaky", action_noise_deg=8.0),))
    return str(scene.save(folder / "scene.json"))


def test_a_sweep_walks_config_plan_schedule_rounds_stats_report_entering_each_module_once(
    tmp_path: Path,
) -> None:
    argv = [
        *("--policy", "scripted", "--compare-to", "scripted:noise=6", "--serial", "--no-progress"),
        *("--max-steps", "40", "--scene", scene_with_an_arm(tmp_path), "--perturbations", "shaky"),
        *("--until-decided", "--max-episodes", "2", "--round", "1", "--whiskers", "1"),
        *("--out", str(tmp_path / "out")),
    ]
    entries = record_driver_calls(argv)
    walked = rooms_walked(entries)

    # Every room was walked, in order, each once (the round loop is one room).
    assert list(dict.fromkeys(walked)) == [name for name, _ in ROOMS]
    assert [room for i, room in enumerate(walked) if i == 0 or walked[i - 1] != room] == [n for n, _ in ROOMS]
    # The loop did loop: two rounds of one seed, and the schedule asked once more (and decided to stop).
    rounds = [
        e
        for e, room in zip(entries, walked, strict=True)
        if room == "rounds" and e.function.endswith(".rounds")
    ]
    assert len(rounds) == 3, rounds
    # Outside the loop, each module of the sweep's rooms is one unbroken run.
    outside = [e.module for e, room in zip(entries, walked, strict=True) if room != "rounds"]
    runs = [m for i, m in enumerate(outside) if (i == 0 or outside[i - 1] != m) and m.startswith(SWEEP_ROOMS)]
    assert len(runs) == len(set(runs)), runs
    # What the walk passed through is what a sweep is: the plan, the store, the arms' effect, the report.
    functions = {e.function for e in entries}
    assert {
        "plan_sweep",
        "schedule_for",
        "ResultsStore.append",
        "arm_differences",
        "record_sweep_whiskers",
        "write_report",
    } <= functions
    assert (tmp_path / "out" / "report.html").is_file()
