"""Policy server under many clients: requests/s and latency for 1, 4 and 20 clients, before (one request
at a time on torch's default threads, how the server ran before batching) against today's server (batched
forward passes on serve's inference threads, every core but one), with one-at-a-time on those threads too.

    ./pants run benchmarks:policy_server -- --policy torch_lerobot:runs/act/checkpoints/003000
    ./pants run benchmarks:policy_server                  (trains a throwaway ACT checkpoint first)

Each server runs in its own process, as ``services/policy_server:serve`` does, so the clients' Python never
shares its interpreter lock. Each client is a thread holding its own websocket connection, sending the
same-sized observation as a robot would (state + every camera of the spec) and waiting for the chunk before
sending the next: closed loop, as openpi-client's ``ActionChunkBroker`` is when it fetches a chunk. Latency
is measured at the client (round trip); throughput is all requests over the wall time of the run. The
servers of a row run in turn, so the ratios are paired. Targets (issue 15, ACT on 2 cores): 20 clients
≥ 4× the throughput before, p95 ≤ 250 ms.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import queue
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from libs.policy_api.registry import make_policy
from libs.policy_api.remote import packb, unpackb
from libs.policy_api.types import Policy
from services.policy_server.server import (
    DEFAULT_MAX_BATCH,
    PolicyServer,
    default_inference_threads,
    limit_inference_threads,
)

THROUGHPUT_TARGET = 4.0
P95_TARGET_MS = 250.0


def observation(policy: Policy, rng: np.random.Generator) -> dict:
    spec = policy.spec
    obs: dict = {"observation.state": rng.uniform(-20, 20, spec.state_dim).astype(np.float32), "task": "pick"}
    for camera in spec.cameras:
        if camera.modality == "depth":
            obs[camera.key] = rng.uniform(0.1, 1.0, (camera.height, camera.width)).astype(np.float32)
        else:
            obs[camera.key] = rng.integers(0, 256, (camera.height, camera.width, 3), dtype=np.uint8)
    return obs


def run_clients(url: str, frame: bytes, clients: int, requests: int) -> tuple[float, list[float], list[int]]:
    """(wall seconds, every round trip in ms, the batch size the server reported for each)."""
    from websockets.sync.client import connect

    latencies: list[float] = []
    batches: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)

    def client() -> None:
        with connect(url, compression=None, max_size=None) as socket:
            socket.recv()  # metadata
            mine, sizes = [], []
            start.wait()
            for _ in range(requests):
                sent = time.perf_counter()
                socket.send(frame)
                reply = socket.recv()
                mine.append((time.perf_counter() - sent) * 1000.0)
                if isinstance(reply, str):
                    raise RuntimeError(reply)
                sizes.append(int(unpackb(reply)["server_timing"].get("batch_size", 1)))
        with lock:
            latencies.extend(mine)
            batches.extend(sizes)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began, latencies, batches


def throwaway_act_checkpoint(workdir: Path) -> str:
    """A 2-step ACT checkpoint (cpu preset, 96×128 cameras): its architecture is what costs time."""
    from backends.torch_lerobot.train import train_policy
    from libs.datasets.record import record_scripted_dataset
    from libs.sim.scene_config import SceneConfig

    demos = workdir / "demos"
    record_scripted_dataset(demos, episodes=2, seed=1000, scene=SceneConfig(), keep="all", progress=False)
    checkpoints = train_policy("act", demos, workdir / "run", 2, preset="cpu", save_freq=2, log_freq=1)
    return f"torch_lerobot:{checkpoints[-1]}"


def _serve(uri: str, max_batch: int, threads: int, ports: multiprocessing.Queue) -> None:
    """The server process: load, warm up (first calls allocate; JAX compiles), serve until terminated."""
    logging.getLogger("services.policy_server.server").setLevel(logging.WARNING)  # no line per connection
    logging.getLogger("websockets").setLevel(logging.WARNING)
    if threads > 0:
        limit_inference_threads(threads)  # as serve does, before the policy's stack is imported
    policy = make_policy(uri)
    sample = observation(policy, np.random.default_rng(0))
    for _ in range(3):
        policy.infer(sample)
    server = PolicyServer(
        policy, uri, host="127.0.0.1", port=0, max_batch=max_batch, new_client_policy=lambda: make_policy(uri)
    ).start_in_thread()
    ports.put(server.port)
    threading.Event().wait()


def measure(
    uri: str, frame: bytes, clients: int, requests: int, max_batch: int, threads: int
) -> tuple[float, list[float], list[int]]:
    """One row: a fresh server process, a warm-up round, then the measured round."""
    context = multiprocessing.get_context("spawn")
    ports = context.Queue()
    process = context.Process(target=_serve, args=(uri, max_batch, threads, ports), daemon=True)
    process.start()
    try:
        try:
            port = ports.get(timeout=300)
        except queue.Empty:
            raise SystemExit(f"error: the policy server for {uri} did not start within 300 s") from None
        url = f"ws://127.0.0.1:{port}"
        run_clients(url, frame, clients, 2)  # warm the batch sizes this row will use
        return run_clients(url, frame, clients, requests)
    finally:
        process.terminate()
        process.join(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default=None, help="policy string (default: a throwaway ACT checkpoint)")
    parser.add_argument("--clients", default="1,4,20", help="client counts, comma-separated")
    parser.add_argument("--requests", type=int, default=40, help="requests per client per row")
    parser.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH)
    parser.add_argument(
        "--threads",
        type=int,
        default=default_inference_threads(),
        help="the server's inference threads (default: serve's, every core but one)",
    )
    args = parser.parse_args(argv)
    console = Console(width=140)
    #: (label, max batch, inference threads; 0 = torch's default, how serve ran before it set them)
    servers = (
        ("before: one at a time, torch's threads", 1, 0),
        (f"one at a time, {args.threads} thread(s)", 1, args.threads),
        (f"batched, {args.threads} thread(s)", args.max_batch, args.threads),
    )

    with tempfile.TemporaryDirectory(prefix="policy_server_bench_") as workdir:
        uri = args.policy or throwaway_act_checkpoint(Path(workdir))
        policy = make_policy(uri)
        frame = packb(observation(policy, np.random.default_rng(0)))
        del policy
        table = Table(
            title=f"policy server, {uri} (own process; closed-loop clients on loopback, "
            f"{args.requests} requests each; the servers of a row run in turn)"
        )
        for column in ("clients", "server", "requests/s", "p50 ms", "p95 ms", "mean batch", "vs before"):
            table.add_column(column, justify="right")
        for clients in (int(text) for text in args.clients.split(",")):
            before = None
            for label, max_batch, threads in servers:
                wall, latencies, batches = measure(uri, frame, clients, args.requests, max_batch, threads)
                throughput = len(latencies) / wall
                before = before or throughput
                table.add_row(
                    str(clients),
                    label,
                    f"{throughput:.1f}",
                    f"{np.percentile(latencies, 50):.0f}",
                    f"{np.percentile(latencies, 95):.0f}",
                    f"{np.mean(batches):.1f}",
                    f"{throughput / before:.2f}x",
                )
                console.print(f"{clients} clients, {label}: {throughput:.1f} requests/s")
        console.print(table)
        console.print(
            f"targets: 20 clients batched ≥ {THROUGHPUT_TARGET:.0f}x before, p95 ≤ {P95_TARGET_MS:.0f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
