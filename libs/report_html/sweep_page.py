"""One sweep as a page: ``report.html`` beside ``report.md`` (``write_report_html``), and the results
browser's page of a sweep, finished or running (``render_sweep`` with a live panel).

The page shows the best checkpoint, success against training step with 95% intervals, the outcome
breakdown, the failure causes per checkpoint, the paired-test and sequential verdicts, the seeds that
flipped between the best and the runner-up, and every episode in a table that sorts and filters; a row
opens the episode's whisker video and summary picture (when recorded) and the command that replays it.
"""

from __future__ import annotations

import os
import shlex
import time
from collections import Counter
from html import escape
from pathlib import Path
from typing import Any

from libs.policy_api.registry import KNOWN_BACKENDS, split_policy_uri
from libs.report_html.compare import Side, render_comparison
from libs.report_html.folder import (
    COMMAND_FILE,
    REPORT_HTML,
    REPORT_JSON,
    REPORT_MD,
    STORE_FILE,
    Episode,
    SweepFolder,
    command_option,
    file_safe_id,
    load_sweep,
)
from libs.report_html.page import document, json_block
from libs.report_html.stats import percent, wilson_interval
from libs.report_html.svg import Point, interval_chart, outcome_bars

#: Flipped seeds between the best checkpoint and the runner-up drawn on the page (all are listed).
FLIPS_SHOWN = 12
UNRECOGNISED = "no failure pattern recognised"


def write_report_html(out_dir: str | Path) -> Path:
    """``report.html`` in ``out_dir``, from the folder's own files, written atomically."""
    folder = load_sweep(out_dir)
    path = Path(out_dir) / REPORT_HTML
    partial = path.with_name(f".{REPORT_HTML}.{os.getpid()}")
    partial.write_text(render_sweep(folder))
    partial.replace(path)
    return path


# --------------------------------------------------------------------------- figures


def summaries(folder: SweepFolder) -> list[dict[str, Any]]:
    """Per control checkpoint: report.json's summary when it is current, else figures from the store."""
    if folder.finished and folder.report and folder.report.get("checkpoints"):
        return [dict(c) for c in folder.report["checkpoints"]]
    out = []
    for checkpoint in folder.checkpoint_ids:
        episodes = folder.episodes_of(checkpoint)
        if not episodes:
            continue
        successes = sum(e.success for e in episodes)
        planned = folder.plan.checkpoint(checkpoint) if folder.plan else None
        step = planned.step if planned else next((e.row.get("step") for e in episodes), None)
        out.append(
            {
                "checkpoint_id": checkpoint,
                "step": step,
                "episodes": len(episodes),
                "successes": successes,
                "success_rate": successes / len(episodes),
                "success_ci95": list(wilson_interval(successes, len(episodes))),
                "outcome_counts": dict(Counter(str(e.row.get("outcome")) for e in episodes)),
                "pick_rate": sum(bool(e.row.get("picked")) for e in episodes) / len(episodes),
                "latency_mean_ms": _mean([e.row.get("latency_mean_ms") for e in episodes]),
            }
        )
    return out


def _mean(values: list[Any]) -> float | None:
    numbers = [float(v) for v in values if isinstance(v, int | float)]
    return sum(numbers) / len(numbers) if numbers else None


def cause_of(episode: Episode) -> str:
    """What the cause filter groups by: the first decisive failure's kind."""
    if episode.success:
        return ""
    if episode.row.get("outcome") == "contract_violation":
        return "contract violation"
    return str(episode.row.get("failure") or UNRECOGNISED)


def progress(folder: SweepFolder) -> dict[str, Any]:
    """A running sweep's progress from its store: episodes done of planned, success so far per checkpoint."""
    controls = [e for e in folder.episodes if not e.arm]
    rows = []
    for checkpoint in folder.checkpoint_ids or list(dict.fromkeys(e.checkpoint for e in controls)):
        episodes = folder.episodes_of(checkpoint)
        planned = len(folder.plan.seeds.get(checkpoint, [])) if folder.plan else None
        wins = sum(e.success for e in episodes)
        low, high = wilson_interval(wins, len(episodes))
        rows.append(
            {
                "checkpoint": checkpoint,
                "episodes": len(episodes),
                "planned": planned,
                "successes": wins,
                "rate": percent(wins / len(episodes)) if episodes else "–",
                "interval": f"{percent(low)}–{percent(high)}" if episodes else "–",
            }
        )
    age = "no episode stored yet"
    if folder.store_time is not None and folder.episodes:
        age = f"last episode stored {max(0, time.time() - folder.store_time):.0f} s ago"
    return {
        "done": len(folder.episodes),
        "planned": folder.planned_episodes,
        "checkpoints": rows,
        "finished": folder.finished,
        "error": folder.store_error,
        "age": age,
    }


# --------------------------------------------------------------------------- commands


def reproduce_command(folder: SweepFolder, episode: Episode) -> str:
    """The command that plays this one episode again (and records its whiskers), else why there is none."""
    identifier = str(episode.row["checkpoint_id"])
    planned = folder.plan.checkpoint(identifier) if folder.plan else None
    last = folder.commands[-1] if folder.commands else None
    if folder.plan is not None and folder.plan.cell(identifier, episode.seed) is not None:
        column, row = folder.plan.cell(identifier, episode.seed) or []
        return (
            f"# grid cell ({column}, {row}): the block's position comes from the grid, so the sweep's own "
            f"command replays it (with the rest of the grid):\n{last or '(see ' + COMMAND_FILE + ')'}"
        )
    uri = planned.policy_uri if planned else None
    if uri is None and (":" in episode.checkpoint or episode.checkpoint in KNOWN_BACKENDS):
        uri = episode.checkpoint  # a policy string is its own id (scripted, remote:..., one checkpoint)
    if uri is None:
        return (
            f"# this folder has no plan.json naming the checkpoint's policy string; the sweep's command "
            f"(seed {episode.seed} is one of its seeds):\n{last or '(see ' + COMMAND_FILE + ')'}"
        )
    backend = split_policy_uri(uri)[0]
    target = KNOWN_BACKENDS.get(backend, ("", "services/eval:sweep"))[1]
    settings = _settings(folder)
    out = (command_option(last, "--out") if last else None) or "results/sweep"
    words = ["./pants", "run", target, "--", "--policy", uri, "--seed", str(episode.seed), "--episodes", "1"]
    if settings.get("max_steps") is not None:
        words += ["--max-steps", str(settings["max_steps"])]
    if settings.get("task") is not None:
        words += ["--task", str(settings["task"])]
    if isinstance(settings.get("scene"), dict):
        words += ["--scene", str(Path(out) / "scenes" / f"{file_safe_id(identifier)}.json")]
    if episode.arm:
        words += ["--perturbations", episode.arm]
    if settings.get("lockstep_envs"):
        words += ["--lockstep-envs", str(settings["lockstep_envs"])]
    if last and "--no-scene-check" in last.split():
        words.append("--no-scene-check")
    safe = file_safe_id(identifier) + (f"-{file_safe_id(episode.arm)}" if episode.arm else "")
    words += ["--serial", "--whiskers", "1", "--out", f"{out.rstrip('/')}-replay/{safe}-seed{episode.seed}"]
    return shlex.join(words)


def _settings(folder: SweepFolder) -> dict[str, Any]:
    settings = dict(folder.settings)
    settings.update((folder.report or {}).get("settings") or {})
    return settings


# --------------------------------------------------------------------------- the page


def episode_entries(folder: SweepFolder) -> list[dict[str, Any]]:
    """The episode table's rows, as the page's script reads them."""
    entries = []
    for order, episode in enumerate(folder.episodes):
        row = episode.row
        height = row.get("max_block_height_m")
        entries.append(
            {
                # Unique per (checkpoint, arm, seed); a control's is "<checkpoint>/<seed>".
                "key": "/".join(
                    [episode.checkpoint, *([episode.arm] if episode.arm else []), str(episode.seed)]
                ),
                "order": order,
                "checkpoint": episode.checkpoint,
                "seed": episode.seed,
                "arm": episode.arm or "",
                "outcome": str(row.get("outcome")),
                "cause": cause_of(episode),
                "sentence": episode.sentence,
                "steps": row.get("steps"),
                "height_cm": None if not isinstance(height, int | float) else round(100 * height, 2),
                "latency_ms": row.get("latency_mean_ms"),
                "progress": row.get("progress"),
                "pick_step": row.get("pick_step"),
                "video": episode.files.get("video"),
                "summary": episode.files.get("summary"),
                "likely": episode.likely_causes,
                "command": reproduce_command(folder, episode),
            }
        )
    return entries


def render_sweep(
    folder: SweepFolder,
    *,
    base: str | None = None,
    nav: str = "",
    live_url: str | None = None,
    compare_url: str | None = None,
) -> str:
    """The sweep's page. ``base``, ``nav``, ``live_url`` and ``compare_url`` are the results browser's: its
    folder URL, its top links, the progress feed of a running sweep and its comparison page."""
    title = f"Evaluation of {folder.policy}"
    parts = [f"<h1>{escape(title)}</h1>"]
    checkpoints = summaries(folder)
    settings = _settings(folder)
    seeds = sorted({e.seed for e in folder.episodes if not e.arm})
    state = "finished" if folder.finished else "in progress (or stopped before its report)"
    parts.append(
        f'<p class="muted">{len(checkpoints)} checkpoint(s), {len(folder.episodes)} episodes stored'
        + (f" of {folder.planned_episodes} planned" if folder.planned_episodes else "")
        + (f", seeds {seeds[0]}–{seeds[-1]}" if seeds else "")
        + f"; {escape(state)}"
        + (f"; {escape(folder.date)}" if folder.date else "")
        + ". Intervals are 95% Wilson score intervals. Files: "
        + ", ".join(
            f'<a href="{name}">{name}</a>'
            for name in (REPORT_MD, REPORT_JSON, COMMAND_FILE, "versions.json")
            if (folder.path / name).is_file()
        )
        + "</p>"
    )
    for error in (folder.report_error, folder.store_error):
        if error:
            parts.append(f'<p class="error">{escape(error)}</p>')
    if live_url and not folder.finished:
        parts.append(_live_panel(folder, live_url))
    parts.append(_best(folder, checkpoints))
    if checkpoints:
        parts.append("<h2>Success against training step</h2>")
        parts.append(_success_chart(checkpoints))
        parts.append(_checkpoint_table(folder, checkpoints))
        parts.append("<h2>Outcomes</h2>")
        parts.append(outcome_bars([(c["checkpoint_id"], c.get("outcome_counts") or {}) for c in checkpoints]))
        parts.append("<h2>Why episodes failed</h2>")
        parts.append(_failure_causes(folder))
        parts.append("<h2>Verdicts</h2>")
        parts.append(_verdicts(folder, compare_url))
    parts.append(_flips(folder))
    parts.append(_episode_table(folder))
    parts.append(_plots(folder))
    parts.append(_provenance(folder, settings))
    return document(title, "".join(parts), base=base, nav=nav)


def _live_panel(folder: SweepFolder, url: str) -> str:
    data = progress(folder)
    planned = data["planned"]
    rows = "".join(
        f"<tr><td>{escape(c['checkpoint'])}</td><td>{c['episodes']}"
        + (f" / {c['planned']}" if c["planned"] else "")
        + f"</td><td>{c['successes']}/{c['episodes']} ({c['rate']})</td><td>{c['interval']}</td></tr>"
        for c in data["checkpoints"]
    )
    return (
        f'<section id="live" data-url="{escape(url)}" data-done="{data["done"]}"><h2>Live progress</h2>'
        f'<p><strong><span id="live-done">{data["done"]}</span></strong> of '
        f'<span id="live-planned">{planned if planned is not None else "?"}</span> episodes stored '
        f'(<span id="live-age">{escape(data["age"])}</span>); read from the store without locking it, '
        "every second.</p>"
        f'<progress id="live-bar" max="{planned or 1}" value="{min(data["done"], planned or 0)}"></progress>'
        f'<p id="live-error" class="error" hidden></p>'
        '<table id="live-table"><thead><tr><th>checkpoint</th><th>episodes</th><th>success so far</th>'
        f"<th>95% interval</th></tr></thead><tbody>{rows}</tbody></table></section>"
    )


def _best(folder: SweepFolder, checkpoints: list[dict[str, Any]]) -> str:
    best_id = (folder.report or {}).get("best") if folder.finished else None
    best = next((c for c in checkpoints if c.get("checkpoint_id") == best_id), None)
    if best is None:
        if folder.finished and checkpoints:
            return (
                '<p class="warn">No best checkpoint: every episode was stopped as a contract violation '
                "(see the table below).</p>"
            )
        return ""
    low, high = best.get("success_ci95") or (None, None)
    return (
        f'<p class="callout" id="best">Best checkpoint: <strong>{escape(str(best_id))}</strong> — '
        f"{best.get('successes')}/{best.get('episodes')} successes ({percent(best.get('success_rate'))}, "
        f"95% interval {percent(low)}–{percent(high)}).</p>"
    )


def _success_chart(checkpoints: list[dict[str, Any]]) -> str:
    by_step = all(isinstance(c.get("step"), int) for c in checkpoints)
    points = []
    for index, c in enumerate(checkpoints):
        low, high = c.get("success_ci95") or (0.0, 1.0)
        x = c["step"] if by_step else index + 1
        points.append(
            Point(
                x,
                float(c.get("success_rate") or 0.0),
                float(low),
                float(high),
                f"{c['checkpoint_id']}: {c.get('successes')}/{c.get('episodes')} "
                f"({percent(c.get('success_rate'))}, 95% {percent(low)}–{percent(high)})",
            )
        )
    if by_step:
        return interval_chart([("success", points)], "training step")
    labels = {float(index + 1): str(c["checkpoint_id"]) for index, c in enumerate(checkpoints)}
    return interval_chart([("success", points)], "checkpoint", x_labels=labels)


def _checkpoint_table(folder: SweepFolder, checkpoints: list[dict[str, Any]]) -> str:
    best = (folder.report or {}).get("best") if folder.finished else None
    rows = []
    for c in checkpoints:
        low, high = c.get("success_ci95") or (None, None)
        drops = c.get("drop_rate")
        progress_mean = c.get("progress_mean")
        rows.append(
            f"<tr{' class=best' if c.get('checkpoint_id') == best else ''}><td>"
            f"{escape(str(c['checkpoint_id']))}"
            f"</td><td class='num'>{'–' if c.get('step') is None else c['step']}</td>"
            f"<td class='num'>{c.get('successes')}/{c.get('episodes')} "
            f"({percent(c.get('success_rate'))})</td>"
            f"<td class='num'>{percent(low)}–{percent(high)}</td>"
            f"<td class='num'>{percent(c.get('pick_rate'))}</td><td class='num'>{percent(drops)}</td>"
            f"<td class='num'>{'–' if progress_mean is None else f'{progress_mean:.2f}'}</td>"
            f"<td class='num'>{_number(c.get('latency_mean_ms'), 1)}</td></tr>"
        )
    return (
        "<table id='checkpoints'><thead><tr><th>checkpoint</th><th class='num'>step</th><th "
        "class='num'>success"
        "</th><th class='num'>95% interval</th><th class='num'>pick rate</th><th class='num'>drop rate</th>"
        "<th class='num'>mean progress</th><th class='num'>latency (ms)</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _number(value: Any, digits: int) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "–"


def _failure_causes(folder: SweepFolder) -> str:
    """A cause × checkpoint table of failed episodes, with report.json's sentence per checkpoint."""
    ids = folder.checkpoint_ids
    counts = {c: Counter(cause_of(e) for e in folder.episodes_of(c) if not e.success) for c in ids}
    causes = sorted(
        {cause for counter in counts.values() for cause in counter}, key=lambda k: (k == UNRECOGNISED, k)
    )
    if not causes:
        return '<p class="muted">No failed episodes.</p>'
    header = "".join(f"<th class='num'>{escape(c)}</th>" for c in ids)
    body = "".join(
        f"<tr><td>{escape(cause)}</td>"
        + "".join(f"<td class='num'>{counts[c].get(cause, 0) or ''}</td>" for c in ids)
        + "</tr>"
        for cause in causes
    )
    sentences = ""
    section = (folder.report or {}).get("failure_causes") or {}
    if isinstance(section, dict):
        items = [
            f"<li><strong>{escape(c)}</strong>: {escape(str(section[c].get('sentence')))}</li>"
            for c in ids
            if isinstance(section.get(c), dict) and section[c].get("failed")
        ]
        sentences = f"<ul>{''.join(items)}</ul>" if items else ""
    return (
        "<p class='muted'>The first decisive failure of each failed episode, named from the simulator's own "
        "signals; filter the episode table by cause to see each one.</p>"
        f"<table id='causes'><thead><tr><th>cause</th>{header}</tr></thead><tbody>{body}</tbody></table>"
        + sentences
    )


def _verdicts(folder: SweepFolder, compare_url: str | None) -> str:
    report = folder.report or {}
    verdicts = "".join(
        [
            *_test_verdicts(report, compare_url),
            _perturbation_arms_table(report.get("perturbations")),
            _whisker_causes_list(report.get("whisker_diagnostics")),
        ]
    )
    if not verdicts:
        if not folder.finished:
            return '<p class="muted">The verdicts come with the report, when the sweep finishes.</p>'
        return '<p class="muted">One checkpoint: nothing to compare.</p>'
    return verdicts


def _test_verdicts(report: dict[str, Any], compare_url: str | None) -> list[str]:
    """The worded verdicts of the report's tests: paired (best against runner-up), on progress, sequential."""
    parts = []
    comparison = report.get("comparison")
    if isinstance(comparison, dict) and comparison.get("wording"):
        link = ""
        if compare_url:
            link = f' <a href="{escape(compare_url)}">Compare them seed by seed</a>.'
        parts.append(
            f"<p id='paired-verdict'><strong>Paired test, best against the runner-up "
            f"({escape(str(comparison.get('runner_up')))}):</strong> "
            f"{escape(str(comparison['wording']))}{link}</p>"
        )
    progress_comparison = report.get("progress_comparison")
    if isinstance(progress_comparison, dict) and progress_comparison.get("wording"):
        parts.append(
            "<p id='progress-verdict'><strong>Sequential test on progress instead of success:</strong> "
            f"{escape(str(progress_comparison['wording']))}</p>"
        )
    sequential = report.get("sequential")
    if isinstance(sequential, dict) and sequential.get("wording"):
        parts.append(
            "<p id='sequential-verdict'><strong>Sequential decision "
            f"({escape(str(sequential.get('verdict')))}, "
            f"{escape(str(sequential.get('episodes_run', sequential.get('episodes'))))} episodes per "
            "checkpoint "
            f"of a budget of {escape(str(sequential.get('budget')))}):</strong> "
            f"{escape(str(sequential['wording']))}</p>"
        )
    return parts


def _perturbation_arms_table(arms: Any) -> str:
    """Each perturbation arm's success against its control on the same seeds ("" without arms)."""
    if not (isinstance(arms, list) and arms):
        return ""
    rows = "".join(
        f"<tr><td>{escape(str(a.get('checkpoint_id')))}</td><td>{escape(str(a.get('arm')))}</td>"
        f"<td class='num'>{a.get('seeds')}</td><td class='num'>{a.get('control_successes')} → "
        f"{a.get('arm_successes')}</td><td class='num'>{_signed(a.get('success_difference'))} "
        f"({_interval(a.get('success_difference_ci95'))})</td></tr>"
        for a in arms
        if isinstance(a, dict)
    )
    return (
        "<p><strong>Perturbation arms against their control</strong> (same seeds; paired difference in "
        "success, 95% interval):</p><table id='arms'><thead><tr><th>checkpoint</th><th>arm</th>"
        "<th class='num'>seeds</th><th class='num'>successes</th><th class='num'>difference</th></tr>"
        f"</thead><tbody>{rows}</tbody></table>"
    )


def _whisker_causes_list(whiskers: Any) -> str:
    """The whisker diagnostics' likely causes per checkpoint ("" without whisker diagnostics)."""
    if not (isinstance(whiskers, dict) and isinstance(whiskers.get("checkpoints"), dict)):
        return ""
    items = "".join(
        f"<li>{escape(str(c))}: "
        f"{escape(', '.join(map(str, (d or {}).get('likely_causes') or [])) or 'none')}"
        "</li>"
        for c, d in whiskers["checkpoints"].items()
    )
    return f"<p><strong>Whisker diagnostics, likely causes</strong> per checkpoint:</p><ul>{items}</ul>"


def _signed(value: Any) -> str:
    return f"{100 * value:+.0f} pts" if isinstance(value, int | float) else "–"


def _interval(value: Any) -> str:
    if isinstance(value, list | tuple) and len(value) == 2:
        return f"{100 * value[0]:+.0f} to {100 * value[1]:+.0f}"
    return "–"


def _flips(folder: SweepFolder) -> str:
    """The seeds that flipped between the best checkpoint and the runner-up (report.json's comparison)."""
    comparison = (folder.report or {}).get("comparison") if folder.finished else None
    if not isinstance(comparison, dict) or not comparison.get("best") or not comparison.get("runner_up"):
        return ""
    first = Side(folder, str(comparison["best"]), f"{comparison['best']} (best)")
    second = Side(folder, str(comparison["runner_up"]), f"{comparison['runner_up']} (runner-up)")
    return "<h2>Seeds that flipped between the best and the runner-up</h2>" + render_comparison(
        first, second, limit=FLIPS_SHOWN
    )


def _episode_table(folder: SweepFolder) -> str:
    entries = episode_entries(folder)
    arms = any(e["arm"] for e in entries)
    arm_filter = (
        '<label>arm<select id="filter-arm"><option value="*">all</option></select></label>' if arms else ""
    )
    return (
        "<h2>Episodes</h2>"
        "<p class='muted'>Click a column to sort it, a row to open the episode: its whisker video "
        "and summary "
        "picture when they were recorded (<code>--whiskers N</code>), and the command that replays it.</p>"
        '<div class="filters">'
        '<label>checkpoint<select id="filter-checkpoint"><option value="*">all</option></select></label>'
        '<label>outcome<select id="filter-outcome"><option value="*">all</option></select></label>'
        '<label>cause<select id="filter-cause"><option value="*">all</option></select></label>'
        f"{arm_filter}"
        '<label>search<input id="filter-text" type="search" placeholder="seed, words of a sentence"></label>'
        '<span id="shown-count" class="muted"></span></div>'
        '<table id="episodes"><thead><tr><th data-key="checkpoint">checkpoint</th>'
        '<th data-key="seed" class="num">seed</th><th data-key="arm">arm</th><th data-key="outcome">'
        "outcome</th>"
        '<th data-key="sentence">failure</th><th data-key="steps" class="num">steps</th>'
        '<th data-key="height_cm" class="num">max height (cm)</th>'
        '<th data-key="latency_ms" class="num">latency (ms)</th><th data-key="video">whiskers</th>'
        "</tr></thead>"
        "<tbody></tbody></table>" + json_block("episodes-data", entries)
    )


def _plots(folder: SweepFolder) -> str:
    """The sweep's own PNGs that the page does not redraw (the --grid maps)."""
    names = [str(p) for p in (folder.report or {}).get("plots") or [] if isinstance(p, str)]
    extra = [n for n in names if "grid_" in Path(n).name and (folder.path / n).is_file()]
    if not extra:
        return ""
    return "<h2>Spatial maps</h2>" + "".join(
        f'<figure><img src="{escape(n)}" alt="{escape(Path(n).stem)}"><figcaption>'
        f"{escape(n)}</figcaption></figure>"
        for n in extra
    )


def _provenance(folder: SweepFolder, settings: dict[str, Any]) -> str:
    commands = "\n".join(folder.commands[-3:]) or "(no command.txt)"
    shown = {k: v for k, v in settings.items() if k != "scene"}
    if "scene" in settings:
        shown["scene"] = (
            "given (saved under scenes/)" if isinstance(settings["scene"], dict) else settings["scene"]
        )
    return (
        "<h2>Provenance</h2><p class='muted'>The commands that wrote this folder (the last three; all in "
        f"<code>{COMMAND_FILE}</code>) and its settings; the store is <code>{STORE_FILE}</code>.</p>"
        f"<pre>{escape(commands)}</pre><pre>{escape(', '.join(f'{k}: {v}' for k, v in shown.items()))}</pre>"
    )
