"""Turns a sweep's episode records into report.md, report.json and plots/ (the provenance files beside them
are ``libs.evaluation.results.provenance``'s)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from libs.evaluation.plan.checkpoints import file_safe_id
from libs.evaluation.plan.grid import GridSpec
from libs.evaluation.report.plots import plot_outcome_bars, plot_spatial_map, plot_success_vs_step
from libs.evaluation.results.episode_record import EpisodeRecord
from libs.evaluation.results.provenance import COMMAND_FILE, VERSIONS_FILE
from libs.evaluation.results.report_section import ReportSection
from libs.evaluation.stats.anytime_tests import SequentialDecision, paired_progress_sequential
from libs.evaluation.stats.metrics import (
    OUTCOME_ORDER,
    PROGRESS_STAGES,
    CheckpointSummary,
    PairedComparison,
    paired_comparison,
    rank_key,
    summarize,
)

#: Outcome-count columns of the table ("success" has its own column).
FAILURE_OUTCOMES = tuple(name for name in OUTCOME_ORDER if name != "success")
REPORT_MD = "report.md"
#: Sections placed right under the heading, before the table: what the reader must know before the scores
#: (inputs that differ from training: ``libs.evaluation.play.input_check``).
TOP_SECTIONS = ("input_drift",)
REPORT_JSON = "report.json"
PLOTS_DIR = "plots"


@dataclass
class Report:
    summaries: list[CheckpointSummary]
    best: CheckpointSummary | None
    comparison: PairedComparison | None
    markdown_path: Path
    json_path: Path
    plot_paths: list[Path]
    violations: int = 0
    #: Best vs runner-up on progress scores, when success alone did not separate them.
    progress_comparison: SequentialDecision | None = None


def order_by_step(summaries: Sequence[CheckpointSummary]) -> list[CheckpointSummary]:
    return sorted(
        summaries, key=lambda s: (s.step is None, s.step if s.step is not None else 0, s.checkpoint_id)
    )


def _all_violations(summary: CheckpointSummary) -> bool:
    return summary.outcome_counts.get("contract_violation", 0) >= summary.episodes


def write_report(
    records: Sequence[EpisodeRecord],
    out_dir: str | Path,
    settings: Mapping[str, Any],
    grid: GridSpec | None = None,
    training_block_xy: Mapping[str, Sequence[Sequence[float]]] | None = None,
    sections: Sequence[ReportSection] = (),
) -> Report:
    """Writes the report of every stored episode: the ranked table, then ``sections`` in order (the sweep's
    ``SWEEP_SECTIONS``). ``training_block_xy`` maps checkpoint id → block xy list."""
    out = Path(out_dir)
    by_checkpoint: dict[str, list[EpisodeRecord]] = defaultdict(list)
    for record in records:
        by_checkpoint[record.checkpoint_id].append(record)
    summaries = order_by_step([summarize(group) for group in by_checkpoint.values()])
    # A checkpoint whose every episode was stopped as a contract violation was never really scored.
    ranked = sorted((s for s in summaries if not _all_violations(s)), key=rank_key)
    best = ranked[0] if ranked else None
    comparison = None
    progress_comparison = None
    if len(ranked) >= 2:
        comparison = paired_comparison(
            by_checkpoint[ranked[0].checkpoint_id], by_checkpoint[ranked[1].checkpoint_id]
        )
        if not comparison.significant:
            progress_comparison = _progress_comparison(
                by_checkpoint[ranked[0].checkpoint_id], by_checkpoint[ranked[1].checkpoint_id]
            )

    plots = _write_plots(summaries, by_checkpoint, out, grid, training_block_xy)

    json_path = out / REPORT_JSON
    json_path.write_text(
        json.dumps(
            {
                "settings": dict(settings),
                "checkpoints": [summary.to_dict() for summary in summaries],
                "best": best.checkpoint_id if best else None,
                "comparison": comparison.to_dict() if comparison else None,
                "progress_comparison": progress_comparison.to_dict() if progress_comparison else None,
                "plots": [str(path.relative_to(out)) for path in plots],
                **{section.key: section.data for section in sections},
            },
            indent=2,
        )
        + "\n"
    )
    markdown_path = out / REPORT_MD
    violations = [record for record in records if record.violation]
    content = ReportContent(
        summaries, best, comparison, progress_comparison, settings, plots, out, grid, violations, sections
    )
    markdown_path.write_text(_markdown(content))
    return Report(
        summaries, best, comparison, markdown_path, json_path, plots, len(violations), progress_comparison
    )


def _write_plots(
    summaries: Sequence[CheckpointSummary],
    by_checkpoint: Mapping[str, Sequence[EpisodeRecord]],
    out: Path,
    grid: GridSpec | None,
    training_block_xy: Mapping[str, Sequence[Sequence[float]]] | None,
) -> list[Path]:
    """Success vs step, outcome bars and, for ``--grid``, each checkpoint's spatial map."""
    plots: list[Path] = []
    if summaries:
        plots.append(plot_success_vs_step(summaries, out / PLOTS_DIR / "success_vs_step.png"))
        plots.append(plot_outcome_bars(summaries, out / PLOTS_DIR / "outcomes.png"))
    if grid is not None:
        for summary in summaries:
            plots.append(
                plot_spatial_map(
                    by_checkpoint[summary.checkpoint_id],
                    out / PLOTS_DIR / f"grid_{file_safe_id(summary.checkpoint_id)}.png",
                    grid.region_xy,
                    (grid.columns, grid.rows),
                    (training_block_xy or {}).get(summary.checkpoint_id),
                )
            )
    return plots


def _progress_comparison(
    best: Sequence[EpisodeRecord], runner_up: Sequence[EpisodeRecord]
) -> SequentialDecision | None:
    """Progress scores of the two on their shared seeds (in seed order), when both carry them."""
    best_by_seed = {r.seed: r.progress for r in best if r.progress is not None}
    other_by_seed = {r.seed: r.progress for r in runner_up if r.progress is not None}
    shared = sorted(best_by_seed.keys() & other_by_seed.keys())
    if not shared:
        return None
    return paired_progress_sequential(
        best[0].checkpoint_id,
        [best_by_seed[s] for s in shared],
        runner_up[0].checkpoint_id,
        [other_by_seed[s] for s in shared],
    )


def _progress_cell(summary: CheckpointSummary) -> str:
    if summary.progress_mean is None or summary.progress_ci95 is None:
        return "–"
    low, high = summary.progress_ci95
    return f"{summary.progress_mean:.2f} ({low:.2f}–{high:.2f})"


def _progress_section(summaries: Sequence[CheckpointSummary]) -> list[str]:
    """Episodes per furthest milestone: where each checkpoint's episodes stop on the way to success."""
    lines = [
        "## Progress",
        "",
        "Furthest milestone per episode (approached: a jaw touched the block; grasped: both jaws; lifted; "
        "over_bowl: carried above the bowl; placed: success). Progress = milestone / 5; its mean carries a "
        "95% normal-approximation interval, so checkpoints that never succeed are still ordered.",
        "",
        "| checkpoint | " + " | ".join(PROGRESS_STAGES) + " | mean progress |",
        "|" + "---|" * (len(PROGRESS_STAGES) + 2),
    ]
    for s in summaries:
        if not s.progress_stage_counts:
            continue
        counts = " | ".join(str(s.progress_stage_counts.get(name, 0)) for name in PROGRESS_STAGES)
        lines.append(f"| {s.checkpoint_id} | {counts} | {_progress_cell(s)} |")
    lines.append("")
    return lines


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


@dataclass(frozen=True)
class ReportContent:
    """What report.md is written from."""

    summaries: Sequence[CheckpointSummary]
    best: CheckpointSummary | None
    comparison: PairedComparison | None
    progress_comparison: SequentialDecision | None
    settings: Mapping[str, Any]
    plots: Sequence[Path]
    out: Path
    grid: GridSpec | None
    violations: Sequence[EpisodeRecord]
    sections: Sequence[ReportSection]

    @property
    def with_progress(self) -> bool:
        return any(summary.progress_mean is not None for summary in self.summaries)


def _heading(content: ReportContent) -> list[str]:
    settings, grid = content.settings, content.grid
    seeds = f"{settings.get('episodes')} seeds"
    mode = f"a {grid.columns}×{grid.rows} grid of block positions" if grid else seeds
    return [
        f"# Evaluation of `{settings.get('policy', '?')}`",
        "",
        f"{len(content.summaries)} checkpoint(s), each scored on the same {mode} "
        f"(seeds from {settings.get('base_seed', 0)}). Intervals are 95% Wilson score intervals.",
        "",
        *_section_lines(section for section in content.sections if section.key in TOP_SECTIONS),
    ]


def _table(content: ReportContent) -> list[str]:
    summaries, best = content.summaries, content.best
    ee = any(summary.action_space == "ee" for summary in summaries)
    header = [
        "checkpoint",
        "step",
        "success",
        "95% interval",
        "pick rate",
        "drop rate (drops/picks)",
        *FAILURE_OUTCOMES,
        "mean steps (successes)",
        "max height mean / max (cm)",
        *(["progress (95% interval)"] if content.with_progress else []),
        *(["IK failures / step", "IK error (mm)"] if ee else []),
        "latency mean / p95 (ms)",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for s in summaries:
        is_best = best is not None and s.checkpoint_id == best.checkpoint_id
        row = [
            f"**{s.checkpoint_id}**" if is_best else s.checkpoint_id,
            "–" if s.step is None else str(s.step),
            f"{s.successes}/{s.episodes} ({_percent(s.success_rate)})",
            f"{_percent(s.success_ci95[0])}–{_percent(s.success_ci95[1])}",
            f"{s.picks}/{s.episodes} ({_percent(s.pick_rate)})",
            "–" if s.drop_rate is None else f"{s.drops}/{s.picks} ({_percent(s.drop_rate)})",
            *(str(s.outcome_counts.get(name, 0)) for name in FAILURE_OUTCOMES),
            "–" if s.mean_steps_of_successes is None else f"{s.mean_steps_of_successes:.0f}",
            f"{100 * s.max_block_height_m_mean:.1f} / {100 * s.max_block_height_m_max:.1f}",
        ]
        if content.with_progress:
            row += [_progress_cell(s)]
        if ee:
            row += [
                "–" if s.ik_failure_rate is None else f"{s.ik_failure_rate:.3f}",
                "–" if s.ik_error_mm_mean is None else f"{s.ik_error_mm_mean:.1f}",
            ]
        row += [f"{s.latency_mean_ms:.1f} / {s.latency_p95_ms:.1f}"]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    return lines


def _verdicts(content: ReportContent) -> list[str]:
    """Unequal episode counts, the best checkpoint and how it compares with the runner-up."""
    lines: list[str] = []
    counts = sorted({s.episodes for s in content.summaries})
    if len(counts) > 1:
        lines += [
            f"**Unequal episode counts** ({counts}): the sweep is incomplete; run the same command again to "
            "finish it before comparing checkpoints.",
            "",
        ]
    best = content.best
    if best is not None:
        low, high = best.success_ci95
        lines += [
            f"**Best checkpoint: {best.checkpoint_id}** — {best.successes}/{best.episodes} successes "
            f"({_percent(best.success_rate)}, 95% interval {_percent(low)}–{_percent(high)}).",
            "",
        ]
    elif content.summaries:
        lines += [
            "**No best checkpoint:** every episode of every checkpoint was stopped as a contract violation "
            "(see below); fix what the violations name, then rerun.",
            "",
        ]
    if content.comparison is not None:
        comparison = content.comparison
        lines += [f"**Against the runner-up ({comparison.runner_up}):** {comparison.wording}", ""]
    if content.progress_comparison is not None:
        lines += [f"**On progress instead of success:** {content.progress_comparison.wording}", ""]
    return lines


def _progress(content: ReportContent) -> list[str]:
    return _progress_section(content.summaries) if content.with_progress else []


def _violations(content: ReportContent) -> list[str]:
    violations = content.violations
    if not violations:
        return []
    lines = [
        "## Contract violations",
        "",
        f"{len(violations)} episode(s) were stopped because the policy emitted unsafe actions; they "
        "count as failures above (outcome `contract_violation`). First message per checkpoint:",
        "",
    ]
    first: dict[str, EpisodeRecord] = {}
    for record in sorted(violations, key=lambda r: (r.checkpoint_id, r.seed)):
        first.setdefault(record.checkpoint_id, record)
    counts: dict[str, int] = defaultdict(int)
    for record in violations:
        counts[record.checkpoint_id] += 1
    for checkpoint_id, record in first.items():
        count = counts[checkpoint_id]
        lines.append(f"- {checkpoint_id} ({count} episodes; seed {record.seed}): {record.violation}")
    lines.append("")
    return lines


def _sections(content: ReportContent) -> list[str]:
    return _section_lines(section for section in content.sections if section.key not in TOP_SECTIONS)


def _section_lines(sections: Iterable[ReportSection]) -> list[str]:
    return [line for section in sections for line in (f"## {section.title}", "", section.markdown, "")]


def _plots(content: ReportContent) -> list[str]:
    if not content.plots:
        return []
    links = [f"![{path.stem}]({path.relative_to(content.out)})" for path in content.plots]
    return ["## Plots", "", *links, ""]


def _footer(content: ReportContent) -> list[str]:
    return [f"Reproduce with `{COMMAND_FILE}`; package versions in `{VERSIONS_FILE}`."]


#: report.md, part by part, in order.
MARKDOWN_PARTS: list[Callable[[ReportContent], list[str]]] = [
    _heading,
    _table,
    _verdicts,
    _progress,
    _violations,
    _sections,
    _plots,
    _footer,
]


def _markdown(content: ReportContent) -> str:
    return "\n".join(line for part in MARKDOWN_PARTS for line in part(content)) + "\n"
