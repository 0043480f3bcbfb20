"""report.html beside report.md, opened from file:// in headless Chromium: it loads with no console errors
and no other origin, shows the verdicts and failure causes, the episode table filters and sorts, and a row
opens its whisker video (which plays), summary picture and the command that replays it."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from libs.report_html.folder import load_sweep
from services.report.chromium import Chromium, Page
from services.report.fixtures import FAULTY, scripted_sweep


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    return scripted_sweep(tmp_path_factory.mktemp("sweep"))


@pytest.fixture(scope="module")
def browser():
    with Chromium() as chromium:
        yield chromium


@pytest.fixture
def page(browser: Chromium, sweep: Path) -> Page:
    tab = browser.open_page()
    tab.navigate((sweep / "report.html").as_uri())
    return tab


def rows(page: Page) -> list[list[str]]:
    return page.evaluate(
        "[...document.querySelectorAll('#episodes tbody tr.episode')].map("
        "r => [...r.children].map(c => c.textContent))"
    )


def select(page: Page, element_id: str, value: str) -> None:
    page.evaluate(
        "(() => "
        f"{{ const s = document.getElementById({json.dumps(element_id)}); s.value = {json.dumps(value)};"
        " s.dispatchEvent(new Event('change')); return s.value; })()"
    )


def test_report_html_is_beside_report_md_and_self_contained(sweep: Path) -> None:
    html = (sweep / "report.html").read_text()
    assert (sweep / "report.md").is_file()
    # nothing is fetched from another origin: every src and href is relative to the folder
    links = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert links and not [link for link in links if re.match(r"[a-z]+:|//", link)], links
    assert "<link" not in html and "@import" not in html


def test_it_loads_from_file_without_console_errors_and_shows_the_verdicts(page: Page, sweep: Path) -> None:
    text = page.evaluate("document.body.innerText")
    assert "Best checkpoint: scripted" in text
    assert page.evaluate("document.querySelectorAll('svg.chart').length") >= 2
    assert "Paired test, best against the runner-up" in text
    causes = page.evaluate("document.getElementById('causes').innerText")
    assert "never descends" in causes
    report = json.loads((sweep / "report.json").read_text())
    assert report["comparison"]["wording"].split(":")[0] in text
    assert page.evaluate("document.getElementById('flipped-seeds').textContent") == "0, 1, 2"
    assert len(rows(page)) == 6
    assert page.errors == []


def test_filters_narrow_the_table_and_columns_sort(page: Page) -> None:
    select(page, "filter-outcome", "success")
    assert {row[0] for row in rows(page)} == {"scripted"} and len(rows(page)) == 3
    select(page, "filter-outcome", "*")
    select(page, "filter-cause", "never descends")
    assert {row[0] for row in rows(page)} == {FAULTY} and len(rows(page)) == 3
    select(page, "filter-cause", "*")
    select(page, "filter-checkpoint", FAULTY)
    assert len(rows(page)) == 3
    assert page.evaluate("document.getElementById('shown-count').textContent") == "3 of 6 episodes"
    select(page, "filter-checkpoint", "*")
    page.evaluate(
        "(() => { const s = document.getElementById('filter-text'); s.value = 'hovers';"
        " s.dispatchEvent(new Event('input')); })()"
    )
    assert len(rows(page)) == 3
    page.evaluate(
        "(() => { const s = document.getElementById('filter-text'); s.value = '';"
        " s.dispatchEvent(new Event('input')); })()"
    )
    page.click("#episodes th[data-key='steps']")
    steps = [int(row[5]) for row in rows(page)]
    assert steps == sorted(steps)
    page.click("#episodes th[data-key='steps']")
    assert [int(row[5]) for row in rows(page)] == sorted(steps, reverse=True)
    assert page.errors == []


def test_a_row_opens_its_whisker_video_which_plays_and_its_replay_command(page: Page, sweep: Path) -> None:
    folder = load_sweep(sweep)
    (with_video,) = (e for e in folder.episodes if e.checkpoint == FAULTY and "video" in e.files)
    page.click(f"#episodes tr.episode[data-key='{FAULTY}/{with_video.seed}']")
    detail = "#episodes tr.detail"
    assert with_video.sentence in page.evaluate(f"document.querySelector('{detail}').innerText")
    source = page.evaluate(f"document.querySelector('{detail} video').getAttribute('src')")
    assert source == with_video.files["video"] and (sweep / source).is_file()
    # the video element can play: it starts and its clock moves
    assert (
        page.evaluate(f"document.querySelector('{detail} video').play().then(() => 'playing')") == "playing"
    )
    page.wait_for(f"document.querySelector('{detail} video').currentTime > 0.2", what="the video to advance")
    page.wait_for(
        f"document.querySelector('{detail} img.whisker-summary').naturalWidth > 0", what="the picture"
    )
    command = page.evaluate(f"document.querySelector('{detail} pre.command').textContent")
    assert f"--policy {FAULTY} --seed {with_video.seed} --episodes 1" in command
    assert "services/eval:sweep" in command and "--max-steps 160" in command
    # a second click closes it; another row without whiskers says how to get them
    page.click(f"#episodes tr.episode[data-key='{FAULTY}/{with_video.seed}']")
    assert page.evaluate(f"document.querySelector('{detail}')") is None
    (without,) = (e for e in folder.episodes if e.checkpoint == "scripted" and e.seed == 2)
    assert "video" not in without.files
    page.click("#episodes tr.episode[data-key='scripted/2']")
    assert "No whisker video for this episode" in page.evaluate(
        f"document.querySelector('{detail}').innerText"
    )
    assert page.errors == []


def test_the_page_is_drawn_from_the_store_it_reports(sweep: Path) -> None:
    with sqlite3.connect(f"file:{sweep / 'episodes.sqlite'}?mode=ro", uri=True) as connection:
        stored = connection.execute("SELECT checkpoint_id, seed, outcome FROM episodes").fetchall()
    folder = load_sweep(sweep)
    assert sorted((e.row["checkpoint_id"], e.seed, e.row["outcome"]) for e in folder.episodes) == sorted(
        stored
    )
    assert folder.finished and folder.planned_episodes == 6
