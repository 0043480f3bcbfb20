"""Why an episode failed, in words and numbers, from the simulator's own per-step signals.

``diagnose_failures(signals)`` reads an episode's ``EpisodeSignals`` and returns every failure it can
name, each with the control step at which it was committed, a headline number and a sentence:

Before any grasp (reported only when both jaws never held the block):
- ``closes on air``: the jaws shut (measured opening below ``CLOSED_OPENING``, commanded closed, touching
  nothing) with the block farther than ``AIR_DISTANCE_M`` from the gripper frame — with that distance,
  which way, and for how long they stay shut.
- ``never descends``: the gripper came over the block but its grasp point stayed more than ``HOVER_M``
  above the block's centre (hovers N cm above it).
- ``lateral miss``: the gripper got down to the block's height but never nearer than ``LATERAL_MISS_M``
  horizontally — by how much and which way, seen from the robot.
- ``never closes``: the gripper reached the grasp pose around the block and the command never closed.
- ``never reaches the block``: neither over the block nor down at its height, ever (decided at the end).
After a grasp:
- ``grasp slips``: the block left the closed jaws before it was carried ``TRANSPORT_START_M`` away.
- ``drops during transport``: the block left the jaws on the way, away from the bowl (where, how high).
- ``releases outside the bowl``: let go near the bowl and the block ended outside it (by how much).
- ``never lets go``: the block is still in the gripper when the episode ends (where, how far from the bowl).
Any time (dropped when the policy made progress afterwards: it reached, touched or closed on the block,
grasped it or started carrying it later):
- ``stalls``: the gripper frame moved less than ``STALL_MOVE_M`` and the jaws less than
  ``STALL_OPENING`` for at least ``STALL_S``.
- ``oscillates``: the gripper went back and forth (``OSCILLATION_REVERSALS`` reversals of at least
  ``OSCILLATION_SWING_M`` along one axis within ``OSCILLATION_WINDOW_S``).

The step of a pre-grasp failure is the attempt: the close if the gripper closed there, else its arrival.
The first failure in time (ties in ``FAILURE_KINDS`` order) is the decisive one; the near/far split between
a drop and a missed placement is the outcome classifier's (``libs.sim.outcome.NEAR_GOAL_MARGIN_M``), so the
two never disagree on which it was. Directions are seen from the robot: "short" is towards its base,
"beyond" away from it, left/right as it looks out over the table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from libs.sim.episode_signals import EpisodeSignals
from libs.sim.outcome import NEAR_GOAL_MARGIN_M

CLOSES_ON_AIR = "closes on air"
NEVER_DESCENDS = "never descends"
LATERAL_MISS = "lateral miss"
NEVER_CLOSES = "never closes"
NEVER_REACHES = "never reaches the block"
GRASP_SLIPS = "grasp slips"
DROPS_IN_TRANSPORT = "drops during transport"
RELEASES_OUTSIDE = "releases outside the bowl"
NEVER_LETS_GO = "never lets go"
STALLS = "stalls"
OSCILLATES = "oscillates"
#: Every kind, in the order that breaks ties between failures committed at the same step (the act before
#: the circumstance: a close on air names the miss it closed on in its own sentence).
FAILURE_KINDS: tuple[str, ...] = (
    CLOSES_ON_AIR,
    NEVER_DESCENDS,
    LATERAL_MISS,
    NEVER_CLOSES,
    GRASP_SLIPS,
    DROPS_IN_TRANSPORT,
    RELEASES_OUTSIDE,
    OSCILLATES,
    STALLS,
    NEVER_REACHES,
    NEVER_LETS_GO,
)

#: Jaws shut on nothing: a held 2.5 cm block stops them at an opening of 14–18 (measured over the scripted
#: expert's grasps), an empty gripper closes to ~0; below 8 nothing is between the jaws.
CLOSED_OPENING = 8.0
#: Shut for at least this many control steps (0.1 s): jaws passing below ``CLOSED_OPENING`` for a step
#: while re-opening are not a close.
CLOSED_MIN_STEPS = 3
#: The command counts as "close" below this (0–100): the expert commands 0, its open commands are >= 30;
#: the jaws meet the 2.5 cm block at an opening of ~15 (the expert's held opening is 14.6–15.2), so a
#: command above that never grips, and 12 leaves a margin. A gripper regressed to the demonstrations' mean
#: (≈ 25) stays above it — the Pi0 failure. The whisker diagnostics and drawings use the same threshold.
CLOSE_COMMAND = 12.0
#: Closing this far (m, gripper frame to block centre) from the block is closing on air: the expert grasps
#: with the frame 0.3–0.9 cm from the centre and still picks with aim errors of 1 cm; at 1.5 cm a jaw no
#: longer reaches past the block's near face (half-size 1.25 cm).
AIR_DISTANCE_M = 0.015
#: Horizontally within this of the block's centre the gripper is "over" it (a block and a bit).
OVER_BLOCK_M = 0.03
#: Lowest grasp-point height above the block centre that still counts as descending to it: the expert goes
#: to 0 ± 0.1 cm; 3 cm puts the fingertips clear above the block's top face (1.25 cm up).
HOVER_M = 0.03
#: Over the block for at least this long (s) counts as hovering there (passing over it does not).
HOVER_DWELL_S = 0.5
#: A gripper that got down to the block's height (within ``HOVER_M``) but never nearer than this
#: horizontally missed it sideways (the expert's grasp frame sits within 1 cm of the centre).
LATERAL_MISS_M = 0.015
#: Settling slack (m): a pose counts as "arrived" once within this of its closest approach.
ARRIVAL_SLACK_M = 0.005
#: A grasped block has started its transport once carried this far (m, horizontally) from where it was
#: grasped; losing it before that is a slip, after it a drop.
TRANSPORT_START_M = 0.03
#: The policy let go (rather than the block slipping) when the command rose this much (0–100) above its
#: lowest value during the grasp.
RELEASE_COMMAND_RISE = 10.0
#: A stall: the gripper frame stays within this (m) of where the stall began, ...
STALL_MOVE_M = 0.005
#: ... the measured jaw opening within this (0–100), ...
STALL_OPENING = 5.0
#: ... for at least this long (s). The expert holds still at most 0.5 s (closing on the block).
STALL_S = 1.5
#: An oscillation: this many reversals along one axis, each swing at least ``OSCILLATION_SWING_M``, within
#: ``OSCILLATION_WINDOW_S``. The expert reverses at most once per axis in any 2 s (down then up at the
#: grasp and at the release), so four is two full back-and-forth periods it never makes.
OSCILLATION_REVERSALS = 4
OSCILLATION_SWING_M = 0.01
OSCILLATION_WINDOW_S = 2.0
_AXES = ("x", "y", "z")


@dataclass(frozen=True)
class Failure:
    """One failure: ``kind`` (``FAILURE_KINDS``), the control ``step`` it was committed at, its headline
    ``value`` in ``unit`` ("m" or "s") and a sentence with the numbers."""

    kind: str
    step: int
    value: float
    unit: str
    detail: str

    def headline(self) -> str:
        return format_quantity(self.value, self.unit)

    def line(self, control_hz: float = 30.0) -> str:
        return f"{self.kind} at {self.step / control_hz:.1f} s (step {self.step}): {self.detail}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def format_quantity(value: float, unit: str) -> str:
    return f"{100 * value:.1f} cm" if unit == "m" else f"{value:.1f} s"


def _cm(metres: float) -> str:
    return f"{100 * metres:.1f} cm"


def direction_words(offset_xy: np.ndarray, reference_xy: np.ndarray, robot_xy: np.ndarray) -> str:
    """``offset_xy`` (m) of something from ``reference_xy``, as the robot sees it: '2.1 cm to the robot's
    left and 0.4 cm towards the robot' — the larger component first."""
    radial = np.asarray(reference_xy, dtype=np.float64) - np.asarray(robot_xy, dtype=np.float64)
    radial /= max(float(np.linalg.norm(radial)), 1e-9)
    left = np.array([-radial[1], radial[0]])
    along, across = float(np.dot(offset_xy, radial)), float(np.dot(offset_xy, left))
    parts = [
        (abs(across), f"{_cm(abs(across))} to the robot's {'left' if across > 0 else 'right'}"),
        (abs(along), f"{_cm(abs(along))} {'away from' if along > 0 else 'towards'} the robot"),
    ]
    parts.sort(key=lambda part: -part[0])
    return " and ".join(text for _, text in parts)


def _first(mask: np.ndarray, start: int = 0) -> int | None:
    hits = np.flatnonzero(mask[start:])
    return int(hits[0]) + start if hits.size else None


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end inclusive) of every run of True."""
    runs, start = [], None
    for index, value in enumerate(mask):
        if value and start is None:
            start = index
        elif not value and start is not None:
            runs.append((start, index - 1))
            start = None
    if start is not None:
        runs.append((start, len(mask) - 1))
    return runs


def grasp_intervals(grasped: np.ndarray, touching: np.ndarray) -> list[tuple[int, int | None]]:
    """(first step both jaws touched, first step neither did — None while still held at the end), as the
    outcome classifier counts a grasp (the block may slide out past one jaw first)."""
    intervals: list[tuple[int, int | None]] = []
    start: int | None = None
    for step in range(len(grasped)):
        if start is None and grasped[step]:
            start = step
        elif start is not None and not touching[step]:
            intervals.append((start, step))
            start = None
    if start is not None:
        intervals.append((start, None))
    return intervals


class _Episode:
    """The signals as arrays plus the derived quantities every check uses."""

    def __init__(self, signals: EpisodeSignals) -> None:
        self.signals = signals
        arrays = signals.arrays()
        self.ee, self.block = arrays["ee"], arrays["block"]
        self.opening, self.command = arrays["opening"], arrays["command"]
        self.grasped, self.touching, self.in_bowl = arrays["grasped"], arrays["touching"], arrays["in_bowl"]
        self.relative = self.ee - self.block
        self.horizontal = np.linalg.norm(self.relative[:, :2], axis=1)
        self.height = self.relative[:, 2]
        self.hz = signals.control_hz
        self.last = len(self.ee) - 1
        self.grasps = grasp_intervals(self.grasped, self.touching)
        self.closed_on_air = (self.opening < CLOSED_OPENING) & (self.command < CLOSE_COMMAND) & ~self.touching

    def words(self, step: int) -> str:
        """Where the gripper frame is relative to the block at ``step``."""
        offset = self.relative[step]
        side = direction_words(offset[:2], self.block[step, :2], self.signals.robot_xy)
        return f"{side}; {_cm(abs(offset[2]))} {'above' if offset[2] >= 0 else 'below'} its centre"

    def close_events(self) -> list[int]:
        """Steps where the jaws shut on nothing (the first step of each such spell)."""
        return [start for start, _ in _runs(self.closed_on_air)]

    def attempt_step(self, arrival: int) -> int:
        """The close at or after ``arrival`` if there was one, else ``arrival``."""
        later = [step for step in self.close_events() if step >= arrival]
        return later[0] if later else arrival


def _closes_on_air(episode: _Episode) -> Failure | None:
    for start, end in _runs(episode.closed_on_air):
        distance = float(np.linalg.norm(episode.relative[start]))
        if distance <= AIR_DISTANCE_M or end - start + 1 < CLOSED_MIN_STEPS:
            continue
        shut_s = (end - start + 1) / episode.hz
        rest = " (to the end)" if end == episode.last else ""
        detail = (
            f"the jaws shut {_cm(distance)} from the block ({episode.words(start)}) and stay shut "
            f"{shut_s:.1f} s{rest}; closing counts as on air beyond {_cm(AIR_DISTANCE_M)}"
        )
        return Failure(CLOSES_ON_AIR, start, distance, "m", detail)
    return None


def _arrival(episode: _Episode, mask: np.ndarray, quantity: np.ndarray, best: float) -> int:
    arrived = mask & (quantity <= best + ARRIVAL_SLACK_M)
    step = _first(arrived)
    return int(step if step is not None else np.flatnonzero(mask)[0])


def _never_descends(episode: _Episode) -> Failure | None:
    # Hovering is staying over the block, not passing over it on the way somewhere else.
    dwell = round(HOVER_DWELL_S * episode.hz)
    over = np.zeros(len(episode.ee), bool)
    for start, end in _runs(episode.horizontal < OVER_BLOCK_M):
        if end - start + 1 >= dwell:
            over[start : end + 1] = True
    if not over.any():
        return None
    lowest = float(episode.height[over].min())
    if lowest <= HOVER_M:
        return None
    step = episode.attempt_step(_arrival(episode, over, episode.height, lowest))
    detail = (
        f"the gripper comes over the block but hovers {_cm(lowest)} above its centre at the lowest "
        f"(a grasp needs about 0; the block's top is {_cm(episode.signals.block_half_size_m)} up)"
    )
    return Failure(NEVER_DESCENDS, step, lowest, "m", detail)


def _lateral_miss(episode: _Episode) -> Failure | None:
    low = episode.height < HOVER_M
    if not low.any():
        return None
    closest = float(episode.horizontal[low].min())
    if closest <= LATERAL_MISS_M:
        return None
    arrival = _arrival(episode, low, episode.horizontal, closest)
    step = episode.attempt_step(arrival)
    side = direction_words(
        episode.relative[arrival, :2], episode.block[arrival, :2], episode.signals.robot_xy
    )
    detail = f"down at the block's height but {_cm(closest)} beside it at the closest ({side})"
    return Failure(LATERAL_MISS, step, closest, "m", detail)


def _never_closes(episode: _Episode) -> Failure | None:
    at_grasp = (episode.height < HOVER_M) & (episode.horizontal <= LATERAL_MISS_M)
    if not at_grasp.any():
        return None
    arrival = _arrival(episode, at_grasp, episode.height, float(episode.height[at_grasp].min()))
    if (episode.command[arrival:] < CLOSE_COMMAND).any():
        return None
    lowest = float(episode.command[arrival:].min())
    detail = (
        f"the gripper reaches the block ({episode.words(arrival)}) but the lowest gripper command after "
        f"that is {lowest:.0f} (closing needs < {CLOSE_COMMAND:.0f})"
    )
    return Failure(NEVER_CLOSES, arrival, float(episode.horizontal[arrival]), "m", detail)


def _never_reaches(episode: _Episode) -> Failure | None:
    over = episode.horizontal < OVER_BLOCK_M
    low = episode.height < HOVER_M
    if over.any() or low.any():
        return None
    distances = np.linalg.norm(episode.relative, axis=1)
    closest_step = int(np.argmin(distances))
    closest = float(distances[closest_step])
    detail = (
        f"the gripper never gets over the block nor down to its height: closest {_cm(closest)} "
        f"({episode.words(closest_step)}), at step {closest_step}"
    )
    return Failure(NEVER_REACHES, episode.last, closest, "m", detail)


def _after_grasp(episode: _Episode) -> list[Failure]:
    failures = []
    signals = episode.signals
    inner = signals.bowl_inner_radius_m
    for start, end in episode.grasps:
        if end is None:
            failures.append(_never_lets_go(episode, start))
            continue
        grasp_xy = episode.block[start, :2]
        carried = np.linalg.norm(episode.block[start : end + 1, :2] - grasp_xy, axis=1)
        lift = float((episode.block[start : end + 1, 2] - signals.block_half_size_m).max())
        opened = episode.command[end] > episode.command[start : end + 1].min() + RELEASE_COMMAND_RISE
        how = "the gripper opened" if opened else "the block slid out of the closed jaws"
        block_xy = episode.block[end, :2]
        bowl_distance = float(np.linalg.norm(block_xy - signals.bowl_xy))
        height = float(episode.block[end, 2] - signals.block_half_size_m)
        if bowl_distance < inner + NEAR_GOAL_MARGIN_M:
            if episode.in_bowl[-1]:
                continue
            final_outside = float(np.linalg.norm(episode.block[-1, :2] - signals.bowl_xy)) - inner
            at_release = bowl_distance - inner
            side = direction_words(block_xy - signals.bowl_xy, signals.bowl_xy, signals.robot_xy)
            detail = (
                f"let go {_cm(abs(at_release))} {'outside' if at_release > 0 else 'inside'} the bowl's inner "
                f"wall ({side} of the bowl's centre, {_cm(height)} up; {how}); the block ended "
                f"{_cm(final_outside)} outside it"
            )
            failures.append(Failure(RELEASES_OUTSIDE, end, max(final_outside, 0.0), "m", detail))
        elif carried.max() < TRANSPORT_START_M:
            if opened:
                continue  # the policy let go before carrying: its choice, not a slip
            held_s = (end - start) / episode.hz
            detail = (
                f"held {held_s:.1f} s and lifted {_cm(max(lift, 0.0))}, then {how} "
                f"{_cm(float(carried[-1]))} from where it was grasped"
            )
            failures.append(Failure(GRASP_SLIPS, end, max(lift, 0.0), "m", detail))
        else:
            way = float(np.linalg.norm(signals.bowl_xy - grasp_xy))
            fraction = 1.0 - bowl_distance / max(way, 1e-9)
            detail = (
                f"lost {_cm(height)} above the table, {_cm(bowl_distance - inner)} short of the bowl's "
                f"wall after {_cm(float(carried.max()))} of carrying ({100 * max(fraction, 0.0):.0f}% of "
                f"the way; {how})"
            )
            failures.append(Failure(DROPS_IN_TRANSPORT, end, bowl_distance - inner, "m", detail))
    return failures


def _never_lets_go(episode: _Episode, start: int) -> Failure:
    signals = episode.signals
    block = episode.block[-1]
    outside = float(np.linalg.norm(block[:2] - signals.bowl_xy)) - signals.bowl_inner_radius_m
    where = (
        "over the bowl"
        if outside < 0
        else f"{_cm(outside)} outside the bowl's wall "
        f"({direction_words(block[:2] - signals.bowl_xy, signals.bowl_xy, signals.robot_xy)} of its centre)"
    )
    height = float(block[2] - signals.block_half_size_m)
    detail = (
        f"grasped at step {start} and still held when the episode ended, {_cm(height)} above the table "
        f"{where}"
    )
    return Failure(NEVER_LETS_GO, episode.last, max(outside, 0.0), "m", detail)


def _stalls(episode: _Episode) -> list[tuple[int, int]]:
    """(start, end) of every stall long enough to count."""
    needed = round(STALL_S * episode.hz)
    stalls, anchor = [], 0
    for step in range(1, episode.last + 2):
        moved = step > episode.last or (
            np.linalg.norm(episode.ee[step] - episode.ee[anchor]) > STALL_MOVE_M
            or abs(episode.opening[step] - episode.opening[anchor]) > STALL_OPENING
        )
        if moved:
            if step - 1 - anchor >= needed:
                stalls.append((anchor, step - 1))
            anchor = step
    return stalls


def _stall_failure(episode: _Episode) -> Failure | None:
    stalls = _stalls(episode)
    if not stalls:
        return None
    start, end = stalls[0]
    duration = (end - start) / episode.hz
    total = sum(e - s for s, e in stalls) / episode.hz
    holding = " holding the block" if episode.grasped[start : end + 1].any() else ""
    detail = (
        f"no progress for {duration:.1f} s from step {start}{holding}: the gripper moves less than "
        f"{_cm(STALL_MOVE_M)}, {_cm(float(np.linalg.norm(episode.relative[start])))} from the block"
        + (f" ({total:.1f} s stalled in all)" if len(stalls) > 1 else "")
    )
    return Failure(STALLS, start + round(STALL_S * episode.hz), duration, "s", detail)


def _reversals(values: np.ndarray, swing: float) -> list[int]:
    """Steps of the turning points of ``values`` that swing back by at least ``swing`` (a zigzag filter)."""
    turns: list[int] = []
    direction = 0  # +1 rising, -1 falling, 0 not known yet
    extreme = low = high = 0
    for step in range(1, len(values)):
        value = values[step]
        if direction == 0:
            high = step if value > values[high] else high
            low = step if value < values[low] else low
            if values[high] - values[low] >= swing:
                direction, extreme = (1, high) if high > low else (-1, low)
            continue
        if direction * (value - values[extreme]) >= 0:
            extreme = step
        elif abs(value - values[extreme]) >= swing:
            turns.append(extreme)
            direction, extreme = -direction, step
    return turns


def _oscillation(episode: _Episode) -> Failure | None:
    window = OSCILLATION_WINDOW_S * episode.hz
    best: tuple[int, int, list[int]] | None = None  # (committed step, axis, reversals in the spell)
    for axis in range(3):
        turns = _reversals(episode.ee[:, axis], OSCILLATION_SWING_M)
        for index in range(len(turns) - OSCILLATION_REVERSALS + 1):
            group = turns[index : index + OSCILLATION_REVERSALS]
            if group[-1] - group[0] <= window:
                # The spell goes on while the reversals keep coming at the same pace.
                spell = list(group)
                gap = window / (OSCILLATION_REVERSALS - 1)
                for turn in turns[index + OSCILLATION_REVERSALS :]:
                    if turn - spell[-1] > gap:
                        break
                    spell.append(turn)
                if best is None or group[-1] < best[0]:
                    best = (group[-1], axis, spell)
                break
    if best is None:
        return None
    step, axis, spell = best
    values = episode.ee[spell, axis]
    amplitude = float(np.median(np.abs(np.diff(values)))) / 2
    duration = (spell[-1] - spell[0]) / episode.hz
    frequency = (len(spell) - 1) / 2 / max(duration, 1e-9)
    detail = (
        f"the gripper goes back and forth along {_AXES[axis]}: ±{_cm(amplitude)} at {frequency:.1f} Hz, "
        f"{len(spell)} reversals over {duration:.1f} s from step {spell[0]}"
    )
    return Failure(OSCILLATES, step, amplitude, "m", detail)


def diagnose_failures(signals: EpisodeSignals) -> list[Failure]:
    """Every failure the signals show, first committed first (see the module docstring)."""
    if signals.steps == 0:
        return []
    episode = _Episode(signals)
    failures: list[Failure] = []
    if not episode.grasps:
        checks = (_closes_on_air, _never_descends, _lateral_miss, _never_closes, _never_reaches)
        failures.extend(found for check in checks if (found := check(episode)) is not None)
    failures.extend(_after_grasp(episode))
    # A stall or an oscillation the policy recovered from (it reached the block, touched it, grasped it or
    # started carrying it afterwards) did not decide the episode.
    progress = [start for start, _ in episode.grasps] + _transport_starts(episode) + _approaches(episode)
    for found in (_stall_failure(episode), _oscillation(episode)):
        if found is not None and not any(step > found.step for step in progress):
            failures.append(found)
    return sorted(failures, key=lambda f: (f.step, FAILURE_KINDS.index(f.kind)))


def _approaches(episode: _Episode) -> list[int]:
    """The first step at the grasp pose (down at the block, within ``LATERAL_MISS_M``), the first jaw
    contact and the first close command (an attempt to grasp), where they happened."""
    at_grasp = (episode.height < HOVER_M) & (episode.horizontal <= LATERAL_MISS_M)
    closing = episode.command < CLOSE_COMMAND
    firsts = (_first(at_grasp), _first(episode.touching), _first(closing))
    return [step for step in firsts if step is not None]


def _transport_starts(episode: _Episode) -> list[int]:
    starts = []
    for start, end in episode.grasps:
        stop = episode.last if end is None else end
        carried = np.linalg.norm(episode.block[start : stop + 1, :2] - episode.block[start, :2], axis=1)
        moved = _first(carried >= TRANSPORT_START_M)
        if moved is not None:
            starts.append(start + moved)
    return starts


def failure_summary(failures: list[Failure], control_hz: float = 30.0) -> str:
    """One line: the decisive (first) failure in full, then the others by name and number."""
    if not failures:
        return ""
    first, *others = failures
    line = first.line(control_hz)
    if others:
        line += "; then " + ", ".join(f"{f.kind} ({f.headline()}, step {f.step})" for f in others)
    return line
