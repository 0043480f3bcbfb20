"""The report's "Why episodes failed" section: each checkpoint's failures by their first decisive cause.

Every failed episode's record names its first decisive failure (``libs.sim.failures``, computed from the
simulator's own signals while the episode ran). Per checkpoint the section counts them, with the median of
each cause's headline number, so "why 0%" is answered in words and numbers; then one line per failed
episode (the first ``EPISODE_LINES`` per checkpoint, in seed order).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from libs.evaluation.results.episode_record import EpisodeRecord
from libs.evaluation.results.report_section import ReportSection
from libs.sim.failures import FAILURE_KINDS, format_quantity

SECTION_KEY = "failure_causes"
SECTION_TITLE = "Why episodes failed"
#: Episode lines per checkpoint in report.md (all of them are in report.json).
EPISODE_LINES = 10
#: Units of each kind's headline number (metres except a stall's duration).
_UNITS = {kind: "s" if kind == "stalls" else "m" for kind in FAILURE_KINDS}
#: What each kind's headline number measures, for the summary sentence.
_MEASURES = {
    "closes on air": "from the block",
    "never descends": "above the block",
    "lateral miss": "beside the block",
    "never closes": "from the block's centre",
    "never reaches the block": "closest",
    "grasp slips": "lifted",
    "drops during transport": "short of the bowl",
    "releases outside the bowl": "outside the bowl",
    "stalls": "without progress",
    "oscillates": "amplitude",
    "never lets go": "outside the bowl",
}
UNRECOGNISED = "no failure pattern recognised"


def checkpoint_causes(records: Sequence[EpisodeRecord]) -> dict[str, Any]:
    """One checkpoint's failures: {"failed", "causes": [{kind, episodes, median, unit}], "sentence"}."""
    failed = [r for r in records if not r.success and r.outcome != "contract_violation"]
    kinds = Counter(r.failure or UNRECOGNISED for r in failed)
    causes = []
    for kind, count in sorted(kinds.items(), key=lambda item: (-item[1], _order(item[0]))):
        values = [r.failure_value for r in failed if r.failure == kind and r.failure_value is not None]
        median = float(np.median(values)) if values else None
        causes.append({"kind": kind, "episodes": count, "median": median, "unit": _UNITS.get(kind, "")})
    parts = []
    for cause in causes:
        number = ""
        if cause["median"] is not None:
            number = f" (median {format_quantity(cause['median'], cause['unit'])} {_MEASURES[cause['kind']]})"
        parts.append(f"{cause['kind']} {cause['episodes']}{number}")
    sentence = (
        f"{len(failed)} of {len(records)} episodes failed: " + ", ".join(parts) if failed else "no failures"
    )
    return {"failed": len(failed), "episodes": len(records), "causes": causes, "sentence": sentence}


def _order(kind: str) -> int:
    return FAILURE_KINDS.index(kind) if kind in FAILURE_KINDS else len(FAILURE_KINDS)


def episode_line(record: EpisodeRecord) -> str:
    detail = record.failure_detail or UNRECOGNISED
    return f"{record.checkpoint_id} seed {record.seed} ({record.outcome}): {detail}"


def failure_section(records: Sequence[EpisodeRecord]) -> ReportSection | None:
    """The section, or None when no episode failed for a reason the simulator can name."""
    by_checkpoint: dict[str, list[EpisodeRecord]] = defaultdict(list)
    for record in records:
        by_checkpoint[record.checkpoint_id].append(record)
    if not any(r.failure for r in records):
        return None
    lines = [
        "The first decisive failure of each failed episode, named from the simulator's own signals "
        "(gripper frame, block, jaw opening and contacts at every step); medians are of each cause's "
        "headline number.",
        "",
    ]
    data: dict[str, Any] = {}
    for checkpoint_id, group in by_checkpoint.items():
        causes = checkpoint_causes(group)
        failed = sorted((r for r in group if r.failure_detail), key=lambda r: r.seed)
        data[checkpoint_id] = {**causes, "episodes_detail": [episode_line(r) for r in failed]}
        if not causes["failed"]:
            continue
        lines.append(f"- **{checkpoint_id}**: {causes['sentence']}.")
        lines.extend(f"  - {episode_line(r)}" for r in failed[:EPISODE_LINES])
        if len(failed) > EPISODE_LINES:
            lines.append(f"  - … {len(failed) - EPISODE_LINES} more in report.json")
    return ReportSection(key=SECTION_KEY, title=SECTION_TITLE, markdown="\n".join(lines), data=data)
