"""The results browser in headless Chromium: the index of every run, a comparison of two checkpoints (of one
sweep or two) listing the seeds that flipped with both videos, learning curves, a quickstart, and a running
sweep's page advancing while the sweep writes its store. Plus what keeps it safe: 127.0.0.1, only files under
the folder, no code from result files, a corrupt or half-written store shown as an error on its page."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest

from benchmarks import learning_curves
from libs.evaluation.fixtures import record
from libs.evaluation.results.store import ResultsStore
from libs.report_html.plan import PLAN_JSON
from services.eval import fixtures as processes
from services.quickstart.summary import write_summary
from services.report.chromium import Chromium, Page
from services.report.fixtures import FAULTY, copy_sweep, request, scripted_sweep, serving
from services.report.serve import ResultsServer, build_parser

SCRIPT_TEXT = "<img src=x onerror=window.__pwned=1><script>window.__pwned=2</script>"


def stored_outcomes(sweep: Path, checkpoint: str) -> dict[int, str]:
    with sqlite3.connect(f"file:{sweep / 'episodes.sqlite'}?mode=ro", uri=True) as connection:
        rows = connection.execute(
            "SELECT seed, outcome FROM episodes WHERE checkpoint_id = ?", (checkpoint,)
        ).fetchall()
    return dict(rows)


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """A results folder as a user's looks: a sweep of two checkpoints with whisker videos, a quickstart, a
    learning-curve run, a corrupt and a half-written store, result files with markup in their text, and
    symbolic links in and out; ``../secret.txt`` lies outside it."""
    base = tmp_path_factory.mktemp("served")
    (base / "secret.txt").write_text("outside the results folder")
    root = base / "results"
    pair = scripted_sweep(root / "sweeps" / "pair")
    quickstart = root / "quickstart"
    scripted_sweep(quickstart / "eval" / "scripted", episodes=2, compare_to=None, whiskers=0)
    write_summary(quickstart)
    # A learning-curve run's files as benchmarks/learning_curves.py writes them, its cells' sweeps real ones
    # (the scripted sweep standing in for the trained policy's).
    curves = root / "curves"
    recipe = learning_curves.RECIPES["act-state"]
    (curves / "cells").mkdir(parents=True)
    for demos in (25, 50):
        copy_sweep(quickstart / "eval" / "scripted", curves / "eval" / f"{recipe.name}-{demos}")
        cell = learning_curves.read_cell(curves, recipe, demos, 60.0 * demos)
        (curves / "cells" / f"{recipe.name}-{demos}.json").write_text(json.dumps(cell))
    learning_curves.write_outputs(curves)
    broken = root / "broken"
    broken.mkdir()
    (broken / "episodes.sqlite").write_bytes(b"not a database at all " * 200)
    half = root / "half"
    half.mkdir()
    whole = (pair / "episodes.sqlite").read_bytes()
    (half / "episodes.sqlite").write_bytes(whole[: len(whole) // 2])
    (half / "report.json").write_text((pair / "report.json").read_text()[:500])
    with ResultsStore(root / "markup" / "episodes.sqlite") as store:
        store.append(record("000100", 0, "timeout", failure="stalls", failure_detail=SCRIPT_TEXT))
        store.append(record("000100", 1, "success"))
    (root / "link-out").symlink_to(Path("/etc"))
    (pair / "passwd-link").symlink_to(Path("/etc/passwd"))
    (pair / "secret-link").symlink_to(base / "secret.txt")
    (root / "inner-link.json").symlink_to(pair / "report.json")
    return root


@pytest.fixture(scope="module")
def server(results: Path):
    with serving(results) as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    with Chromium() as chromium:
        yield chromium


@pytest.fixture
def page(browser: Chromium) -> Page:
    return browser.open_page()


def test_the_index_lists_every_sweep_quickstart_and_learning_curve_run(
    server: ResultsServer, page: Page
) -> None:
    page.navigate(server.url)
    sweeps = page.evaluate(
        "Object.fromEntries([...document.querySelectorAll('#sweeps tbody tr')].map("
        "r => [r.dataset.path, [...r.children].map(c => c.textContent)]))"
    )
    assert set(sweeps) - {"live"} == {  # "live" appears once the running-sweep test has started it
        "sweeps/pair",
        "quickstart/eval/scripted",
        "curves/eval/act-state-25",
        "curves/eval/act-state-50",
        "broken",
        "half",
        "markup",
    }
    path, policy, checkpoints, best, episodes, date, status = sweeps["sweeps/pair"]
    assert (policy, checkpoints, best, episodes, status) == (
        "scripted",
        "2",
        "scripted (100%)",
        "6 / 6",
        "finished",
    )
    assert date.endswith("UTC")
    assert sweeps["broken"][-1] == "error" and sweeps["half"][-1] == "error"
    assert page.evaluate("document.querySelector('#quickstarts a').textContent") == "quickstart"
    assert page.evaluate("document.querySelector('#curves a').textContent") == "curves"
    assert page.errors == []


def test_comparing_two_checkpoints_lists_the_flipped_seeds_with_both_videos(
    server: ResultsServer, page: Page, results: Path
) -> None:
    page.navigate(server.url)
    page.evaluate(
        "(() => { const f = document.getElementById('compare-form');"
        f" f.a.value = {json.dumps('sweeps/pair::scripted')};"
        f" f.b.value = {json.dumps('sweeps/pair::' + FAULTY)};"
        " })()"
    )
    page.click("#compare-form button")
    page.wait_for(
        "location.pathname === '/compare' && document.readyState === 'complete'", what="the comparison"
    )
    pair = results / "sweeps" / "pair"
    first, second = stored_outcomes(pair, "scripted"), stored_outcomes(pair, FAULTY)
    flipped = [seed for seed in sorted(first) if (first[seed] == "success") != (second[seed] == "success")]
    assert flipped == [0, 1, 2]
    assert page.evaluate("document.getElementById('flipped-seeds').textContent") == ", ".join(
        map(str, flipped)
    )
    assert page.evaluate("document.querySelectorAll('h3.flip').length") == len(flipped)
    # seed 0: both episodes side by side, each with its sentence and a video that plays
    sides = "document.querySelectorAll('h3.flip[data-seed=\"0\"] + .pair .side')"
    assert page.evaluate(f"[...{sides}].map(s => s.dataset.checkpoint)") == ["scripted", FAULTY]
    sentence = page.evaluate(f"{sides}[1].querySelector('.sentence').textContent")
    with sqlite3.connect(f"file:{pair / 'episodes.sqlite'}?mode=ro", uri=True) as connection:
        (detail,) = connection.execute(
            "SELECT failure_detail FROM episodes WHERE checkpoint_id = ? AND seed = 0", (FAULTY,)
        ).fetchone()
    assert sentence == detail
    for index in (0, 1):
        video = f"{sides}[{index}].querySelector('video')"
        assert page.evaluate(f"{video}.play().then(() => 'playing')") == "playing"
        page.wait_for(f"{video}.currentTime > 0.2", what=f"video {index} to advance")
    assert page.errors == []


def test_comparing_two_sweeps_uses_the_seeds_they_share(server: ResultsServer, page: Page) -> None:
    query = urlencode({"a": "quickstart/eval/scripted::scripted", "b": f"sweeps/pair::{FAULTY}"})
    page.navigate(f"{server.url}compare?{query}")
    assert "2 shared seeds" in page.evaluate("document.getElementById('pairing-summary').textContent")
    assert page.evaluate("document.getElementById('flipped-seeds').textContent") == "0, 1"
    assert page.errors == []


def test_a_sweep_page_links_its_best_and_runner_up_comparison(server: ResultsServer, page: Page) -> None:
    page.navigate(f"{server.url}sweep/sweeps/pair/")
    assert "Best checkpoint: scripted" in page.evaluate("document.body.innerText")
    page.click("#paired-verdict a")
    page.wait_for(
        "location.pathname === '/compare' && document.readyState === 'complete'", what="the comparison"
    )
    assert page.evaluate("document.getElementById('flipped-seeds').textContent") == "0, 1, 2"
    # the episode table's media resolve into the sweep's folder
    page.navigate(f"{server.url}sweep/sweeps/pair/")
    page.click(f"#episodes tr.episode[data-key='{FAULTY}/0']")
    page.wait_for("document.querySelector('#episodes tr.detail img.whisker-summary').naturalWidth > 0")
    assert page.errors == []


def test_learning_curves_and_quickstart_pages(server: ResultsServer, page: Page) -> None:
    page.navigate(f"{server.url}curves/curves/")
    cells = page.evaluate(
        "[...document.querySelectorAll('#cells tbody tr')].map(r => r.children[1].textContent)"
    )
    assert cells == ["25", "50"]
    assert page.evaluate("document.querySelectorAll('svg.chart circle').length") == 2
    assert page.evaluate("document.querySelector('img[alt=\"learning curves\"]').naturalWidth > 0")
    page.click("#cells tbody tr a")
    page.wait_for("location.pathname === '/sweep/curves/eval/act-state-25/'", what="the cell's sweep")
    page.navigate(f"{server.url}quickstart/quickstart/")
    assert "Best: scripted:scripted" in page.evaluate("document.body.innerText")
    assert page.errors == []


def test_a_running_sweeps_page_advances_as_its_store_fills(
    server: ResultsServer, page: Page, results: Path
) -> None:
    out = results / "live"
    command = processes.sweep_command(out, "--serial", "--max-steps", "160", episodes=8)
    sweep = processes.start_sweep(command)
    try:
        deadline = time.monotonic() + 300
        while not (out / PLAN_JSON).is_file():
            assert sweep.poll() is None, sweep.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the sweep did not start"
            time.sleep(0.1)
        # Held still while the page loads, so the page surely sees the sweep before it ends.
        with processes.held_still(sweep.pid):
            page.navigate(f"{server.url}sweep/live/")
            page.evaluate("window.__sameDocument = true")
            first = int(page.evaluate("document.getElementById('live-done').textContent"))
            assert page.evaluate("document.getElementById('live-planned').textContent") == "8"
        page.wait_for(
            f"Number(document.getElementById('live-done').textContent) > {first} && window.__sameDocument",
            timeout_s=300,
            what="the live count to advance without a reload",
        )
        assert "success so far" in page.evaluate("document.getElementById('live-table').innerText")
        _, stderr = sweep.communicate(timeout=600)
        assert sweep.returncode == 0, stderr[-3000:]
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait()
    # when the sweep finishes the page reloads into the full report
    page.wait_for("document.getElementById('best') !== null", timeout_s=60, what="the finished report")
    assert len(processes.stored(out)) == 8
    assert page.errors == []


@pytest.mark.parametrize(
    "path",
    [
        "/files/../secret.txt",
        "/files/%2e%2e/secret.txt",
        "/files/..%2fsecret.txt",
        "/files/sweeps/../../secret.txt",
        "/files//etc/passwd",
        "/files/%2fetc%2fpasswd",
        "/files/link-out/passwd",
        "/files/sweeps/pair/passwd-link",
        "/files/sweeps/pair/secret-link",
        "/files/sweeps/pair/..%5c..%5csecret.txt",
        "/sweep/../",
        "/sweep/%2e%2e/results/sweeps/pair/",
        "/api/progress/../results/sweeps/pair/",
        "/curves/../",
        "/compare?a=../results/sweeps/pair::scripted&b=sweeps/pair::scripted",
        "/files/sweeps/pair/nothing-here.txt",
    ],
)
def test_only_files_under_the_folder_are_served(server: ResultsServer, path: str) -> None:
    status, _, body = request(server, path)
    assert status == 404, path
    assert b"outside the results folder" not in body and b"root:" not in body


def test_what_is_served_and_how(server: ResultsServer) -> None:
    assert server.server_address[0] == "127.0.0.1"
    assert build_parser().parse_args(["results"]).host == "127.0.0.1"
    status, headers, body = request(server, "/files/inner-link.json")  # a link that stays inside
    assert status == 200 and json.loads(body)["best"] == "scripted"
    status, headers, _ = request(server, "/files/sweeps/pair/report.html")
    assert status == 200 and headers["content-type"].startswith("text/plain")  # shown, never run
    assert "sandbox" in headers["content-security-policy"]
    status, headers, _ = request(server, "/")
    assert (
        "script-src 'sha256-" in headers["content-security-policy"]
        and "unsafe" not in headers["content-security-policy"]
    )
    status, _, _ = request(server, "/", method="POST")
    assert status == 405
    video = "/files/sweeps/pair/whiskers/scripted/seed_0/whiskers_kinematic.mp4"
    assert request(server, video)[0] == 200


def test_a_corrupt_or_half_written_store_is_an_error_on_its_page(
    server: ResultsServer, page: Page, results: Path
) -> None:
    for name in ("broken", "half"):
        status, _, body = request(server, f"/sweep/{name}/")
        assert status == 200
        assert "is not a readable results store" in body.decode(), name
    assert "report.json cannot be read" in request(server, "/sweep/half/")[2].decode()
    assert request(server, "/api/progress/broken/")[0] == 200
    page.navigate(f"{server.url}sweep/broken/")
    assert "is not a readable results store" in page.evaluate("document.querySelector('.error').textContent")
    assert page.errors == []
    assert request(server, "/")[0] == 200  # and the server carries on
    assert (
        (results / "broken" / "episodes.sqlite").read_bytes().startswith(b"not a database")
    )  # never written


def test_text_from_result_files_is_shown_never_run(server: ResultsServer, page: Page) -> None:
    page.navigate(f"{server.url}sweep/markup/")
    page.click("#episodes tr.episode[data-key='000100/0']")
    assert SCRIPT_TEXT in page.evaluate("document.querySelector('#episodes tr.detail').innerText")
    assert SCRIPT_TEXT in page.evaluate("document.querySelector('#episodes tbody').innerText")
    assert page.evaluate("window.__pwned === undefined")
    assert page.evaluate("document.querySelectorAll('#episodes img').length") == 0
    assert page.errors == []
