"""Combines the quickstart's sweeps (one per model stack) into ``summary.md``, ``summary.json`` and a plot.

Each sweep already wrote its own report (intervals, failure taxonomy, paired comparison, plots, whiskers);
this puts the stacks side by side so a newcomer sees both in one table.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from libs.errors import LabError

EVAL_DIR = "eval"
REPORT_JSON = "report.json"


class SummaryError(LabError, RuntimeError):
    """No sweep results to summarise; the message names the fix."""


def load_sweeps(out: Path) -> dict[str, dict[str, Any]]:
    """policy name (the sweep folder's name) -> its report.json."""
    sweeps = {}
    for report in sorted((out / EVAL_DIR).glob(f"*/{REPORT_JSON}")):
        sweeps[report.parent.name] = json.loads(report.read_text())
    if not sweeps:
        raise SummaryError(
            f"no {EVAL_DIR}/*/{REPORT_JSON} under {out}: run the eval stages first "
            "(./pants run //:quickstart -- --only eval-act-state,eval-jax-state,eval-act)"
        )
    return sweeps


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def _best_overall(sweeps: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]] | None:
    candidates = [
        (policy, checkpoint) for policy, report in sweeps.items() for checkpoint in report["checkpoints"]
    ]
    if not candidates:
        return None
    # Highest success, then the higher lower interval bound (more evidence), then the later step.
    return max(
        candidates,
        key=lambda item: (item[1]["success_rate"], item[1]["success_ci95"][0], item[1]["step"] or 0),
    )


def plot_success_by_stack(sweeps: dict[str, dict[str, Any]], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(figsize=(6.4, 3.6))
    for policy, report in sweeps.items():
        points = sorted(
            (c["step"] or 0, c["success_rate"], *c["success_ci95"]) for c in report["checkpoints"]
        )
        if not points:
            continue
        steps, rates, lows, highs = (list(column) for column in zip(*points, strict=True))
        axes.plot(steps, [100 * r for r in rates], marker="o", label=policy)
        axes.fill_between(steps, [100 * v for v in lows], [100 * v for v in highs], alpha=0.2)
    axes.set_xlabel("training step")
    axes.set_ylabel("success (%), 95% Wilson band")
    axes.set_ylim(-2, 102)
    axes.legend()
    axes.set_title("Success vs training step, same seeds for every checkpoint")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def write_summary(out: Path) -> Path:
    sweeps = load_sweeps(out)
    best = _best_overall(sweeps)
    plot = plot_success_by_stack(sweeps, out / "plots" / "success_by_stack.png")
    lines = [
        "# so101lab quickstart",
        "",
        "Every checkpoint of every policy scored on shared seeds (0, 1, ...). Intervals are 95% Wilson "
        "intervals; with few episodes they are wide, so read the per-sweep reports' paired comparisons "
        "before choosing.",
        "",
        f"![success by stack]({plot.relative_to(out)})",
        "",
        "| policy | checkpoint | step | success | 95% interval | pick rate | drop rate | outcomes |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for policy, report in sweeps.items():
        for checkpoint in report["checkpoints"]:
            low, high = checkpoint["success_ci95"]
            outcomes = ", ".join(f"{k} {v}" for k, v in sorted(checkpoint["outcome_counts"].items()) if v)
            lines.append(
                f"| {policy} | {checkpoint['checkpoint_id']} | {checkpoint['step']} | "
                f"{checkpoint['successes']}/{checkpoint['episodes']} | {_percent(low)}–{_percent(high)} | "
                f"{_percent(checkpoint['pick_rate'])} | {_percent(checkpoint['drop_rate'])} | {outcomes} |"
            )
    lines += ["", "## Reports, plots and whiskers", ""]
    for policy in sweeps:
        sweep_dir = out / EVAL_DIR / policy
        lines.append(f"- {policy}: [report]({(sweep_dir / 'report.md').relative_to(out)})")
        for video in sorted(sweep_dir.glob("whiskers/**/*.mp4")):
            lines.append(f"  - whiskers: [{video.name}]({video.relative_to(out)})")
    if best is not None:
        policy, checkpoint = best
        rate = _percent(checkpoint["success_rate"])
        lines += ["", f"Best: **{policy} {checkpoint['checkpoint_id']}** ({rate})."]
    summary_md = out / "summary.md"
    summary_md.write_text("\n".join(lines) + "\n")
    (out / "summary.json").write_text(
        json.dumps(
            {
                "sweeps": {policy: str((out / EVAL_DIR / policy).relative_to(out)) for policy in sweeps},
                "best": None if best is None else f"{best[0]}:{best[1]['checkpoint_id']}",
                "checkpoints": {policy: report["checkpoints"] for policy, report in sweeps.items()},
            },
            indent=2,
        )
        + "\n"
    )
    return summary_md


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="quickstart-summary", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the quickstart's output folder")
    arguments = parser.parse_args(argv)
    try:
        path = write_summary(arguments.out)
    except SummaryError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"summary: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
