"""Test support for the results pages: small real sweeps (the scripted expert against one of its faulty
variants, so seeds flip), a results browser on an ephemeral port of 127.0.0.1, and raw HTTP requests
(sent as written: no client tidies a ``..`` away). Shared by the tests of this package."""

from __future__ import annotations

import http.client
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from libs.evaluation.sweep import EnvSettings, SweepConfig, evaluate
from services.report.serve import ResultsServer

#: The scripted expert places the block in ~140 steps; its ``hover`` fault never descends and times out.
MAX_STEPS = 160
FAULTY = "scripted:fault=hover"


def scripted_sweep(
    out: Path,
    *,
    episodes: int = 3,
    compare_to: str | None = FAULTY,
    whiskers: int = 1,
    policy: str = "scripted",
) -> Path:
    """A real sweep (serial, no Ray) of ``policy`` and ``compare_to`` on seeds 0..episodes-1, with whisker
    videos of ``whiskers`` episodes per checkpoint (kinematic whiskers: the quicker mode)."""
    config = SweepConfig(
        policy=policy,
        compare_to=compare_to,
        episodes=episodes,
        env=EnvSettings(max_steps=MAX_STEPS),
        serial=True,
        progress=False,
        whiskers=whiskers,
        whiskers_mode="kinematic",
    )
    evaluate(config, out, argv=["services/eval:sweep", "--policy", policy, "--out", str(out)])
    return out


def copy_sweep(source: Path, destination: Path) -> Path:
    """A copy of a sweep folder with its files' times kept (a copy is still a finished sweep)."""
    shutil.copytree(source, destination, copy_function=shutil.copy2)
    return destination


@contextmanager
def serving(root: Path) -> Iterator[ResultsServer]:
    """The results browser on 127.0.0.1 and a free port, in a thread, for the block."""
    server = ResultsServer(root, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def request(server: ResultsServer, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of ``path`` sent byte for byte as given."""
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(str(host), int(port), timeout=60)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()
