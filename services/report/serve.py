"""The results browser: every sweep, quickstart and learning-curve run under a folder, as pages.

    ./pants run services/report:serve -- results            # http://127.0.0.1:8765/
    ./pants run services/report:serve -- results --port 0   # any free port (printed)

Read-only and safe by default: it binds 127.0.0.1 unless ``--host`` says otherwise; it serves only files
under the folder (a path with ``..``, an absolute path, or one that leaves the folder through a symbolic
link is answered 404); it never runs or imports anything from the results (JSON and a copy of the SQLite
store are read, nothing else), and its pages allow only their own script (Content-Security-Policy), while
files are served with scripts disabled (``sandbox``). It never writes, and reads a running sweep's store
without locking it; a corrupt or half-written file is an error message on its page, never a crash.
"""

from __future__ import annotations

import argparse
import ipaddress
import mimetypes
import sys
import traceback
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

from libs.report_html.folder import is_sweep_folder, load_sweep
from libs.report_html.page import CONTENT_SECURITY_POLICY
from libs.report_html.sweep_page import render_sweep
from services.report import pages

DEFAULT_PORT = 8765
#: Files served with these types (anything else is a download).
CONTENT_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".json": "application/json",
    ".md": "text/plain; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".csv": "text/plain; charset=utf-8",
    # a results folder's HTML (report.html) is shown as its source: its scripts never run at this origin
    ".html": "text/plain; charset=utf-8",
}
#: Files are sent in pieces of this size.
CHUNK = 1 << 16


def resolve_under(root: Path, relative: str) -> Path | None:
    """``root/relative`` when it exists and stays under ``root`` (after following links); else None.

    ``relative`` is already percent-decoded. Refused: a NUL or backslash, an absolute path, any ``..``
    part, and any path whose real location is outside the real ``root`` (a symbolic link out)."""
    if "\x00" in relative or "\\" in relative or relative.startswith("/"):
        return None
    parts = [part for part in relative.split("/") if part not in ("", ".")]
    if any(part == ".." for part in parts):
        return None
    real_root = root.resolve()
    try:
        real = real_root.joinpath(*parts).resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop
        return None
    if real != real_root and not real.is_relative_to(real_root):
        return None
    return real


class ResultsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
        self.root = Path(root).resolve()
        super().__init__((host, port), ResultsHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"


class ResultsHandler(BaseHTTPRequestHandler):
    server: ResultsServer
    server_version = "so101lab-results"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: one line per request would drown the sweep's own output in a shared terminal

    def do_HEAD(self) -> None:  # http.server calls do_<METHOD>
        self._handle(send_body=False)

    def do_GET(self) -> None:  # http.server calls do_<METHOD>
        self._handle(send_body=True)

    def do_POST(self) -> None:  # http.server calls do_<METHOD>
        self._send_text(HTTPStatus.METHOD_NOT_ALLOWED, "read-only: only GET and HEAD", True)

    do_PUT = do_DELETE = do_PATCH = do_POST

    # ------------------------------------------------------------------ routing

    def _handle(self, send_body: bool) -> None:
        try:
            self._route(send_body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser went away (a video seek cancels its request)
        except Exception as error:  # one bad page must not stop the server
            traceback.print_exc(file=sys.stderr)
            self._send_page(
                HTTPStatus.INTERNAL_SERVER_ERROR,
                pages.error_page("Error", f"this page could not be drawn: {type(error).__name__}: {error}"),
                send_body,
            )

    def _route(self, send_body: bool) -> None:
        split = urlsplit(self.path)
        path = unquote(split.path)
        query = parse_qs(split.query)
        root = self.server.root
        if path == "/":
            self._send_page(HTTPStatus.OK, pages.index(root), send_body)
        elif path == "/favicon.ico":
            self.send_response(HTTPStatus.NO_CONTENT)
            self._common_headers()
            self.end_headers()
        elif path.startswith("/files/"):
            target = resolve_under(root, path.removeprefix("/files/"))
            if target is None or not target.is_file():
                self._not_found(send_body)
            else:
                self._send_file(target, send_body)
        elif path == "/compare":
            first, second = query.get("a", [""])[0], query.get("b", [""])[0]
            status, text = pages.comparison(root, lambda p: resolve_under(root, p), first, second)
            self._send_page(HTTPStatus(status), text, send_body)
        elif (folder := self._folder(path, "/sweep/")) is not None and is_sweep_folder(folder):
            relative = pages.relative_path(root, folder)
            sweep = load_sweep(folder)
            compare = None
            comparison = (sweep.report or {}).get("comparison")
            if isinstance(comparison, dict) and comparison.get("best") and comparison.get("runner_up"):
                compare = pages.compare_url(
                    relative, str(comparison["best"]), relative, str(comparison["runner_up"])
                )
            text = render_sweep(
                sweep,
                base=pages.files_url(relative),
                nav=pages.NAV,
                live_url="/api/progress/" + quote(relative) + ("/" if relative else ""),
                compare_url=compare,
            )
            self._send_page(HTTPStatus.OK, text, send_body)
        elif (folder := self._folder(path, "/api/progress/")) is not None and is_sweep_folder(folder):
            self._send_bytes(
                HTTPStatus.OK, pages.progress_json(folder).encode(), "application/json", send_body
            )
        elif (folder := self._folder(path, "/curves/")) is not None and (folder / "cells").is_dir():
            self._send_page(HTTPStatus.OK, pages.learning_curves(root, folder), send_body)
        elif (folder := self._folder(path, "/quickstart/")) is not None and (
            folder / "summary.json"
        ).is_file():
            self._send_page(HTTPStatus.OK, pages.quickstart(root, folder), send_body)
        else:
            self._not_found(send_body)

    def _folder(self, path: str, prefix: str) -> Path | None:
        if not path.startswith(prefix):
            return None
        folder = resolve_under(self.server.root, path.removeprefix(prefix))
        return folder if folder is not None and folder.is_dir() else None

    # ------------------------------------------------------------------ answers

    def _common_headers(self) -> None:
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")

    def _not_found(self, send_body: bool) -> None:
        self._send_text(HTTPStatus.NOT_FOUND, "not found", send_body)

    def _send_text(self, status: HTTPStatus, text: str, send_body: bool) -> None:
        self._send_bytes(status, (text + "\n").encode(), "text/plain; charset=utf-8", send_body)

    def _send_page(self, status: HTTPStatus, text: str, send_body: bool) -> None:
        self._send_bytes(
            status, text.encode(), "text/html; charset=utf-8", send_body, CONTENT_SECURITY_POLICY
        )

    def _send_bytes(
        self, status: HTTPStatus, body: bytes, content_type: str, send_body: bool, policy: str | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", policy or "default-src 'none'; sandbox")
        self._common_headers()
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _send_file(self, path: Path, send_body: bool) -> None:
        """The file, or the byte range asked for (video players seek with ranges)."""
        size = path.stat().st_size
        start, end = 0, size - 1
        status = HTTPStatus.OK
        wanted = self.headers.get("Range")
        if wanted and wanted.startswith("bytes=") and "," not in wanted and size > 0:
            first, _, last = wanted.removeprefix("bytes=").strip().partition("-")
            try:
                if first:
                    start, end = int(first), int(last) if last else size - 1
                else:
                    start, end = max(0, size - int(last)), size - 1
            except ValueError:
                start, end = 0, size - 1
            else:
                if start > end or start >= size:
                    self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                end = min(end, size - 1)
                status = HTTPStatus.PARTIAL_CONTENT
        content_type = CONTENT_TYPES.get(path.suffix.lower())
        self.send_response(status)
        if content_type is None:
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            self.send_header("Content-Disposition", "attachment")
            content_type = "application/octet-stream"
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(end - start + 1 if size else 0))
        self.send_header("Accept-Ranges", "bytes")
        if status == HTTPStatus.PARTIAL_CONTENT:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        # Served files run no script, whatever they hold (an SVG or HTML opened directly included).
        self.send_header(
            "Content-Security-Policy", "default-src 'none'; img-src 'self'; media-src 'self'; sandbox"
        )
        self._common_headers()
        self.end_headers()
        if not send_body or size == 0:
            return
        with path.open("rb") as handle:
            handle.seek(start)
            remaining = end - start + 1
            while remaining > 0:
                piece = handle.read(min(CHUNK, remaining))
                if not piece:
                    break
                self.wfile.write(piece)
                remaining -= len(piece)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="serve", description="Browse the sweeps, quickstarts and learning curves under a results folder."
    )
    parser.add_argument("results", type=Path, help="the results folder (read, never written)")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 shows the results, "
        "videos and commands to everyone who can reach it)",
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    root: Path = arguments.results
    if not root.is_dir():
        print(
            f"error: {root} is not a folder: pass the folder your sweeps wrote into (e.g. results)",
            file=sys.stderr,
        )
        return 2
    try:
        server = ResultsServer(root, arguments.host, arguments.port)
    except OSError as error:
        print(
            f"error: cannot listen on {arguments.host}:{arguments.port} ({error.strerror}): "
            "pass another --port (0 picks a free one)",
            file=sys.stderr,
        )
        return 2
    try:
        loopback = ipaddress.ip_address(arguments.host).is_loopback
    except ValueError:
        loopback = arguments.host == "localhost"
    if not loopback:
        print(f"warning: listening on {arguments.host}: anyone who can reach it can read these results")
    print(f"serving {root.resolve()} at {server.url} (read-only; Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
