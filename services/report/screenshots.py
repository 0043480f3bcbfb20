"""The docs' pictures of the results browser, taken in headless Chromium from a real results folder:

    ./pants run services/report:screenshots -- RESULTS_DIR SWEEP --out docs

``SWEEP`` is a sweep's folder relative to ``RESULTS_DIR`` with at least two checkpoints and whisker videos
(``--whiskers N``). Writes ``results-browser-report.png`` (the top of the sweep's page),
``results-browser-episode.png`` (a failed episode opened: its sentence, whisker video and summary, the
replay command) and ``results-browser-compare.png`` (the best checkpoint against the runner-up, a flipped
seed's two episodes side by side).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from libs.report_html.folder import load_sweep
from services.report.chromium import Chromium, Page
from services.report.serve import ResultsServer

SEEK_VIDEOS = """Promise.all([...document.querySelectorAll(%s)].map(v => new Promise(done => {
  const seek = () => { v.addEventListener('seeked', () => done(true), {once: true});
                       v.currentTime = v.duration * 0.6; };
  if (v.readyState >= 1) seek(); else v.addEventListener('loadedmetadata', seek, {once: true});
})))"""


def scroll_to(page: Page, selector: str, offset: int = 12) -> None:
    page.evaluate(
        f"window.scrollTo(0, document.querySelector({json.dumps(selector)}).getBoundingClientRect().top"
        f" + window.scrollY - {offset})"
    )


def take(results: Path, sweep: str, out: Path) -> list[Path]:
    folder = load_sweep(results / sweep)
    comparison = (folder.report or {}).get("comparison") or {}
    if not folder.finished or not comparison.get("runner_up"):
        raise SystemExit(f"error: {sweep} needs a finished sweep of two or more checkpoints")
    failed = next((e for e in folder.episodes if not e.success and "video" in e.files), None)
    if failed is None:
        raise SystemExit(
            f"error: {sweep} has no failed episode with a whisker video: sweep with --whiskers N"
        )
    server = ResultsServer(results, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    written = []
    try:
        with Chromium(window=(1280, 1000)) as browser:
            page = browser.open_page()
            page.navigate(f"{server.url}sweep/{sweep}/")
            written.append(page.screenshot(out / "results-browser-report.png", full_page=False))
            key = f"{failed.row['checkpoint_id']}/{failed.seed}"
            page.click(f"#episodes tr.episode[data-key={json.dumps(key)}]")
            page.evaluate(SEEK_VIDEOS % json.dumps("#episodes tr.detail video"))
            page.wait_for("document.querySelector('#episodes tr.detail img').naturalWidth > 0")
            scroll_to(page, "#episodes tr.open")
            written.append(page.screenshot(out / "results-browser-episode.png", full_page=False))
            page.click("#paired-verdict a")
            page.wait_for("location.pathname === '/compare' && document.readyState === 'complete'")
            page.evaluate(SEEK_VIDEOS % json.dumps(".pair video"))
            written.append(page.screenshot(out / "results-browser-compare.png", full_page=False))
            if page.errors:
                raise SystemExit(f"error: the pages logged errors: {page.errors}")
    finally:
        server.shutdown()
        server.server_close()
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="screenshots", description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="the results folder")
    parser.add_argument("sweep", help="a sweep folder under it (two or more checkpoints, whisker videos)")
    parser.add_argument("--out", type=Path, default=Path("docs"), help="where the PNGs go (default docs)")
    arguments = parser.parse_args(argv)
    for path in take(arguments.results, arguments.sweep.strip("/"), arguments.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
