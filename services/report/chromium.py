"""Headless Chromium driven over the DevTools protocol (a websocket): the results browser's tests and the
docs' screenshots load pages in the real browser a user opens them in.

Debian's ``chromium`` package (``.ci/run`` installs it where missing). One browser process per
``Chromium``; ``open_page`` gives a tab whose console errors, uncaught exceptions and failed loads are
collected (``page.errors``), so a test can say a page loaded cleanly.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

#: Where Debian's package puts the browser (tests run with a bare PATH).
CANDIDATES = ("chromium", "chromium-browser", "/usr/bin/chromium", "/usr/lib/chromium/chromium")


class ChromiumError(RuntimeError):
    """The browser is missing, did not start, or a page did not answer; the message names the fix."""


def find_chromium() -> str:
    for name in CANDIDATES:
        found = shutil.which(name) or (name if os.path.isabs(name) and os.access(name, os.X_OK) else None)
        if found:
            return found
    raise ChromiumError(
        "no Chromium found (looked for chromium, chromium-browser): install Debian's package with "
        "`apt-get install chromium` (.ci/run does this where it is missing)"
    )


class Page:
    """One tab, attached in flat mode: commands carry its session id."""

    def __init__(self, browser: Chromium, session_id: str, target_id: str) -> None:
        self._browser = browser
        self.session_id = session_id
        self.target_id = target_id
        #: Console errors, uncaught exceptions and failed loads, in the order they came.
        self.errors: list[str] = []

    def send(self, method: str, params: dict[str, Any] | None = None, timeout_s: float = 60) -> dict:
        return self._browser.send(method, params, session_id=self.session_id, timeout_s=timeout_s)

    def on_event(self, message: dict) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            texts = [str(arg.get("value", arg.get("description", ""))) for arg in params.get("args", [])]
            self.errors.append("console: " + " ".join(texts))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            description = details.get("exception", {}).get("description") or details.get("text", "")
            self.errors.append(f"exception: {description}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self.errors.append(f"log: {entry.get('text')} {entry.get('url', '')}".strip())

    def navigate(self, url: str, timeout_s: float = 60) -> None:
        """Loads ``url`` and waits for its load event."""
        self._browser.events_seen.clear()
        answer = self.send("Page.navigate", {"url": url})
        if answer.get("errorText"):
            raise ChromiumError(f"{url} did not load: {answer['errorText']}")
        self._browser.wait_event("Page.loadEventFired", self.session_id, timeout_s)

    def evaluate(self, expression: str, timeout_s: float = 60) -> Any:
        """The value of a JavaScript expression (promises awaited); a thrown error is a ChromiumError."""
        answer = self.send(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
            timeout_s=timeout_s,
        )
        if "exceptionDetails" in answer:
            details = answer["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise ChromiumError(f"{expression[:80]!r} threw: {text}")
        return answer.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout_s: float = 60, what: str | None = None) -> Any:
        """Polls ``expression`` until it is truthy (through page loads); its value."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                value = self.evaluate(expression)
            except ChromiumError:  # the page is between documents (a link followed, a reload)
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise ChromiumError(f"timed out waiting for {what or expression}")
            time.sleep(0.1)

    def click(self, selector: str) -> None:
        """A real mouse click (pressed and released) at the centre of the first element ``selector`` finds."""
        box = self.evaluate(
            f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
            if (!e) return null; e.scrollIntoView({{block: 'center'}});
            const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()"""
        )
        if box is None:
            raise ChromiumError(f"nothing matches {selector!r} to click")
        for kind in ("mousePressed", "mouseReleased"):
            self.send(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": box[0], "y": box[1], "button": "left", "clickCount": 1},
            )

    def screenshot(self, path: str | Path, full_page: bool = True) -> Path:
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": full_page}
        if full_page:
            width, height = self.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
            )
            params["clip"] = {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}
        data = self.send("Page.captureScreenshot", params)["data"]
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path


class Chromium:
    """A headless Chromium process and its DevTools connection (a context manager)."""

    def __init__(self, window: tuple[int, int] = (1280, 900), extra_args: Sequence[str] = ()) -> None:
        self.executable = find_chromium()
        # Chromium's helper processes may still write to the profile as the browser exits ("Directory not
        # empty" on cleanup): what is left then is only a scratch folder in the temp dir.
        self._profile = tempfile.TemporaryDirectory(prefix="so101lab-chromium-", ignore_cleanup_errors=True)
        arguments = [
            self.executable,
            "--headless=new",
            "--remote-debugging-port=0",
            f"--user-data-dir={self._profile.name}",
            f"--window-size={window[0]},{window[1]}",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-gpu",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--autoplay-policy=no-user-gesture-required",
            "--mute-audio",
            *extra_args,
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            arguments.append("--no-sandbox")  # Chromium refuses its sandbox as root (CI containers)
        arguments.append("about:blank")
        self._log = open(Path(self._profile.name) / "chromium.log", "wb")
        self.process = subprocess.Popen(arguments, stdout=self._log, stderr=subprocess.STDOUT)
        self._ids = itertools.count(1)
        self.events_seen: list[dict] = []
        self._pages: dict[str, Page] = {}
        self._stack = contextlib.ExitStack()
        try:
            self._connection: ClientConnection = self._stack.enter_context(
                connect(self._websocket_url(), max_size=None, open_timeout=30)
            )
        except BaseException:
            self.close()
            raise

    def _websocket_url(self, timeout_s: float = 60) -> str:
        port_file = Path(self._profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ChromiumError(
                    f"Chromium exited ({self.process.returncode}) at start: {self.log_tail()}"
                )
            if port_file.is_file():
                lines = port_file.read_text().split()
                if len(lines) >= 2:
                    return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
            time.sleep(0.05)
        raise ChromiumError(
            f"Chromium did not open its DevTools port in {timeout_s:.0f} s: {self.log_tail()}"
        )

    def log_tail(self) -> str:
        self._log.flush()
        return (Path(self._profile.name) / "chromium.log").read_text(errors="replace")[-2000:]

    def send(
        self, method: str, params: dict[str, Any] | None = None, session_id: str | None = None, timeout_s=60
    ) -> dict:
        message_id = next(self._ids)
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params or {}}
        if session_id:
            message["sessionId"] = session_id
        self._connection.send(json.dumps(message))
        deadline = time.monotonic() + timeout_s
        while True:
            answer = self._receive(deadline, f"an answer to {method}")
            if answer.get("id") == message_id:
                if "error" in answer:
                    raise ChromiumError(f"{method} failed: {answer['error'].get('message')}")
                return answer.get("result", {})

    def _receive(self, deadline: float, what: str) -> dict:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ChromiumError(f"timed out waiting for {what}")
        try:
            message = json.loads(self._connection.recv(timeout=remaining))
        except TimeoutError:
            raise ChromiumError(f"timed out waiting for {what}") from None
        if "method" in message:
            self.events_seen.append(message)
            page = self._pages.get(message.get("sessionId", ""))
            if page is not None:
                page.on_event(message)
        return message

    def wait_event(self, method: str, session_id: str, timeout_s: float = 60) -> dict:
        deadline = time.monotonic() + timeout_s
        while True:
            for event in self.events_seen:
                if event.get("method") == method and event.get("sessionId") == session_id:
                    self.events_seen.remove(event)
                    return event
            self._receive(deadline, method)

    def open_page(self) -> Page:
        target_id = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session_id = self.send("Target.attachToTarget", {"targetId": target_id, "flatten": True})["sessionId"]
        page = Page(self, session_id, target_id)
        self._pages[session_id] = page
        for domain in ("Page", "Runtime", "Log"):
            page.send(f"{domain}.enable")
        return page

    def close(self) -> None:
        try:
            self._stack.close()
        except Exception:  # the process is ended below either way
            pass
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        self._profile.cleanup()

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
