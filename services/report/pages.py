"""The results browser's own pages: the index of runs, a comparison, a quickstart and a learning-curve run.
A sweep's page is ``libs.report_html.sweep_page.render_sweep``; every page uses the same shell."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from libs.report_html.compare import Side, render_comparison
from libs.report_html.folder import FolderError, SweepFolder, load_sweep, read_json
from libs.report_html.page import document
from libs.report_html.stats import percent, wilson_interval
from libs.report_html.svg import Point, interval_chart
from services.report.runs import Run, find_runs, read_cells

NAV = '<a href="/">all runs</a>'


def sweep_url(path: str) -> str:
    return "/sweep/" + quote(path) + ("/" if path else "")


def files_url(path: str) -> str:
    return "/files/" + quote(path) + ("/" if path else "")


def compare_url(a: str, checkpoint_a: str, b: str, checkpoint_b: str) -> str:
    return "/compare?" + urlencode({"a": f"{a}::{checkpoint_a}", "b": f"{b}::{checkpoint_b}"})


def page(title: str, body: str, base: str | None = None) -> str:
    return document(title, body, base=base, nav=NAV)


def error_page(title: str, message: str) -> str:
    return page(title, f"<h1>{escape(title)}</h1><p class='error'>{escape(message)}</p>")


# --------------------------------------------------------------------------- index


def index(root: Path) -> str:
    runs = find_runs(root)
    sweeps = [run for run in runs if run.kind == "sweep"]
    parts = [
        "<h1>Results</h1>",
        "<p class='muted'>Every sweep, quickstart and learning-curve run under <code>"
        f"{escape(str(root))}</code>, "
        "read-only.</p>",
    ]
    if not runs:
        parts.append(
            "<p class='warn'>No runs here yet: a sweep writes one folder "
            "(<code>./pants run services/eval:sweep -- --policy scripted --out results/first</code>).</p>"
        )
    quickstarts = [run for run in runs if run.kind == "quickstart"]
    curves = [run for run in runs if run.kind == "learning curves"]
    if quickstarts:
        parts.append("<h2>Quickstarts</h2><ul id='quickstarts'>")
        parts.extend(_quickstart_item(root, run) for run in quickstarts)
        parts.append("</ul>")
    if curves:
        parts.append("<h2>Learning curves</h2><ul id='curves'>")
        parts.extend(
            f"<li><a href='/curves/{quote(run.path)}{'/' if run.path else ''}'>"
            f"{escape(run.path or '.')}</a></li>"
            for run in curves
        )
        parts.append("</ul>")
    loaded: list[tuple[Run, SweepFolder]] = [(run, load_sweep(root / run.path)) for run in sweeps]
    if sweeps:
        parts.append("<h2>Sweeps</h2>")
        parts.append(_sweep_table(loaded))
        parts.append(_compare_form(loaded))
    return page("so101lab results", "".join(parts))


def _quickstart_item(root: Path, run: Run) -> str:
    try:
        summary = read_json(root / run.path / "summary.json")
        best = f" — best: {escape(str(summary.get('best')))}" if isinstance(summary, dict) else ""
    except FolderError as error:
        best = f" — <span class='error'>{escape(str(error))}</span>"
    link = f"/quickstart/{quote(run.path)}{'/' if run.path else ''}"
    return f"<li><a href='{link}'>{escape(run.path or '.')}</a>{best}</li>"


def _sweep_table(loaded: list[tuple[Run, SweepFolder]]) -> str:
    rows = []
    for run, folder in loaded:
        ids = folder.checkpoint_ids
        best = ""
        if folder.finished and folder.report and folder.report.get("best"):
            best_id = str(folder.report["best"])
            summary = next((c for c in folder.report["checkpoints"] if c.get("checkpoint_id") == best_id), {})
            best = f"{best_id} ({percent(summary.get('success_rate'))})"
        episodes = str(len(folder.episodes))
        if folder.planned_episodes:
            episodes += f" / {folder.planned_episodes}"
        if folder.store_error or folder.report_error:
            status = "<span class='error'>error</span>"
        elif folder.finished:
            status = "finished"
        else:
            status = "running (or stopped)"
        rows.append(
            f"<tr data-path='{escape(run.path)}'><td><a href='{sweep_url(run.path)}'>"
            f"{escape(run.path or '.')}</a>"
            f"</td><td>{escape(folder.policy)}</td><td class='num'>{len(ids)}</td><td>{escape(best)}</td>"
            f"<td class='num'>{episodes}</td><td>{escape(folder.date)}</td><td>{status}</td></tr>"
        )
    return (
        "<table id='sweeps'><thead><tr><th>sweep</th><th>policy</th><th class='num'>checkpoints</th>"
        "<th>best</th><th class='num'>episodes</th><th>date</th><th>status</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _compare_form(loaded: list[tuple[Run, SweepFolder]]) -> str:
    options = []
    for run, folder in loaded:
        for checkpoint in folder.checkpoint_ids:
            value = f"{run.path}::{checkpoint}"
            options.append(
                f"<option value='{escape(value)}'>{escape(run.path or '.')} · {escape(checkpoint)}</option>"
            )
    if len(options) < 2:
        return ""
    second = options[1].replace("<option ", "<option selected ", 1)
    return (
        "<h2>Compare two checkpoints on shared seeds</h2><form class='inline' id='compare-form' "
        "action='/compare' "
        f"method='get'><label>first<select name='a'>{''.join(options)}</select></label>"
        f"<label>second<select name='b'>{''.join(options[:1] + [second] + options[2:])}</select></label>"
        "<button type='submit'>compare</button></form>"
    )


# --------------------------------------------------------------------------- comparison


def comparison(root: Path, resolve: Any, first: str, second: str) -> tuple[int, str]:
    """(status, page) comparing ``first`` and ``second`` (each ``sweep path::checkpoint id``)."""
    sides = []
    for given in (first, second):
        path, separator, checkpoint = given.partition("::")
        folder_path = resolve(path)
        if not separator or folder_path is None or not folder_path.is_dir():
            return 404, error_page("Not found", f"no sweep {path!r} under the results folder")
        folder = load_sweep(folder_path)
        if folder.store_error:
            return 200, error_page(f"Cannot compare {path}", folder.store_error)
        if checkpoint not in folder.checkpoint_ids:
            return 404, error_page("Not found", f"the sweep {path!r} has no checkpoint {checkpoint!r}")
        sides.append(Side(folder, checkpoint, f"{path or '.'} · {checkpoint}", files_url(path)))
    a, b = sides
    body = (
        f"<h1>{escape(a.label)} against {escape(b.label)}</h1>"
        "<p class='muted'>The same seeds give both checkpoints the same block and bowl positions, so "
        "a seed that "
        "succeeded with one and failed with the other (it flipped) shows what changed. Both episodes of each "
        "flipped seed are side by side, with their whisker videos when recorded.</p>"
        f"<p><a href='{sweep_url(relative_path(root, a.folder.path))}'>{escape(a.label)}</a> · "
        f"<a href='{sweep_url(relative_path(root, b.folder.path))}'>{escape(b.label)}</a></p>"
        + render_comparison(a, b)
    )
    return 200, page("Comparison", body)


def relative_path(root: Path, path: Path) -> str:
    relative = path.relative_to(root).as_posix()
    return "" if relative == "." else relative


# --------------------------------------------------------------------------- quickstart and curves


def quickstart(root: Path, folder: Path) -> str:
    relative = relative_path(root, folder)
    try:
        summary = read_json(folder / "summary.json")
        if not isinstance(summary, dict) or not isinstance(summary.get("sweeps"), dict):
            raise FolderError("summary.json is not a quickstart summary (no sweeps)")
    except FolderError as error:
        return error_page(f"Quickstart {relative}", str(error))
    series, rows, links = [], [], []
    for policy, sweep_path in summary["sweeps"].items():
        sweep_folder = folder / str(sweep_path)
        sweep_relative = (
            relative_path(root, sweep_folder)
            if sweep_folder.resolve().is_relative_to(root.resolve())
            else None
        )
        loaded = load_sweep(sweep_folder)
        checkpoints = (loaded.report or {}).get("checkpoints") or []
        points = []
        for index, c in enumerate(checkpoints):
            low, high = c.get("success_ci95") or (0.0, 1.0)
            x = c.get("step") if isinstance(c.get("step"), int) else index + 1
            points.append(
                Point(x, float(c.get("success_rate") or 0), low, high, f"{policy} {c.get('checkpoint_id')}")
            )
            rows.append(
                f"<tr><td>{escape(str(policy))}</td><td>{escape(str(c.get('checkpoint_id')))}</td>"
                f"<td class='num'>{c.get('successes')}/{c.get('episodes')} "
                f"({percent(c.get('success_rate'))})</td>"
                f"<td class='num'>{percent(low)}–{percent(high)}</td></tr>"
            )
        series.append((str(policy), points))
        if sweep_relative is not None:
            links.append(f"<li><a href='{sweep_url(sweep_relative)}'>{escape(str(policy))}</a></li>")
    body = (
        f"<h1>Quickstart {escape(relative or '.')}</h1>"
        f"<p class='callout'>Best: <strong>{escape(str(summary.get('best')))}</strong></p>"
        + interval_chart(series, "training step")
        + "<table><thead><tr><th>policy</th><th>checkpoint</th><th class='num'>success</th><th "
        "class='num'>95% "
        f"interval</th></tr></thead><tbody>{''.join(rows)}</tbody></table><h2>Sweeps</h2><ul>{''.join(links)}</ul>"
    )
    return page("Quickstart", body)


def learning_curves(root: Path, folder: Path) -> str:
    relative = relative_path(root, folder)
    cells, errors = read_cells(folder)
    by_policy: dict[str, list[Point]] = {}
    rows = []
    for cell in cells:
        rate = float(cell["success_rate"])
        episodes = int(cell.get("episodes") or 0)
        successes = int(cell.get("successes") or round(rate * episodes))
        low, high = cell.get("wilson95") or wilson_interval(successes, episodes)
        label = f"{cell['policy']} from {cell['demos']} demos: {successes}/{episodes}"
        by_policy.setdefault(str(cell["policy"]), []).append(
            Point(int(cell["demos"]), rate, low, high, label)
        )
        sweep = folder / "eval" / f"{cell['policy']}-{cell['demos']}"
        name = escape(str(cell["policy"]))
        link = f"<a href='{sweep_url(relative_path(root, sweep))}'>{name}</a>" if sweep.is_dir() else name
        minutes = cell.get("train_seconds")
        rows.append(
            f"<tr><td>{link}</td><td class='num'>{cell['demos']}</td><td class='num'>{successes}/{episodes} "
            f"({percent(rate)})</td><td class='num'>{percent(low)}–{percent(high)}</td><td class='num'>"
            f"{'–' if not isinstance(minutes, int | float) else f'{minutes / 60:.1f} min'}</td></tr>"
        )
    parts = [f"<h1>Learning curves {escape(relative or '.')}</h1>"]
    parts.extend(f"<p class='error'>{escape(e)}</p>" for e in errors)
    parts.append(
        "<p class='muted'>Success of each policy's last checkpoint against the number of scripted "
        "demonstrations it was trained on, every cell on the same evaluation seeds (95% Wilson "
        "intervals).</p>"
    )
    parts.append(interval_chart(sorted(by_policy.items()), "scripted demonstrations", log_x=True))
    parts.append(
        "<table id='cells'><thead><tr><th>policy</th><th class='num'>demos</th><th class='num'>success</th>"
        f"<th class='num'>95% interval</th><th class='num'>train time</th></tr></thead><tbody>{''.join(rows)}"
        "</tbody></table>"
    )
    if (folder / "learning_curves.png").is_file():
        parts.append(
            f"<h2>The run's own figure</h2><img alt='learning curves' "
            f"src='{files_url(relative)}learning_curves.png'>"
        )
    return page("Learning curves", "".join(parts))


def progress_json(folder: Path) -> str:
    from libs.report_html.sweep_page import progress

    return json.dumps(progress(load_sweep(folder)))
