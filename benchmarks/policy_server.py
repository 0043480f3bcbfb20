"""Policy server under many clients: requests/s and latency for 1, 4 and 20 clients, one request at a time
(``--max-batch 1``, how the server worked before batching) against batched forward passes.

    ./pants run benchmarks:policy_server -- --policy torch_lerobot:runs/act/checkpoints/003000
    ./pants run benchmarks:policy_server                  (trains a throwaway ACT checkpoint first)

Each client is a thread holding its own websocket connection, sending the same-sized observation as a robot
would (state + every camera of the spec) and waiting for the chunk before sending the next: closed loop, as
openpi-client's ``ActionChunkBroker`` is when it fetches a chunk. Latency is measured at the client
(round trip); throughput is all requests over the wall time of the run. Targets (issue 15, ACT on 2 cores):
20 clients ≥ 4× the one-at-a-time throughput, p95 ≤ 250 ms.
"""

from __future__ import annotations

import argparse
import logging
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
from services.policy_server.server import DEFAULT_MAX_BATCH, PolicyServer

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default=None, help="policy string (default: a throwaway ACT checkpoint)")
    parser.add_argument("--clients", default="1,4,20", help="client counts, comma-separated")
    parser.add_argument("--requests", type=int, default=40, help="requests per client per row")
    parser.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (1: busy cores make more threads spin)"
    )
    args = parser.parse_args(argv)
    logging.getLogger("services.policy_server.server").setLevel(logging.WARNING)  # no line per connection
    logging.getLogger("websockets").setLevel(logging.WARNING)
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    console = Console(width=140)

    with tempfile.TemporaryDirectory(prefix="policy_server_bench_") as workdir:
        uri = args.policy or throwaway_act_checkpoint(Path(workdir))
        policy = make_policy(uri)
        frame = packb(observation(policy, np.random.default_rng(0)))
        for _ in range(3):  # warm-up: first calls allocate and (JAX) compile
            policy.infer(unpackb(frame))
        table = Table(
            title=f"policy server, {uri} (closed-loop clients on loopback, {args.requests} requests each)"
        )
        for column in (
            "clients",
            "server",
            "requests/s",
            "p50 ms",
            "p95 ms",
            "mean batch",
            "vs one-at-a-time",
        ):
            table.add_column(column, justify="right")
        for clients in (int(text) for text in args.clients.split(",")):
            baseline = None
            for label, max_batch in (("one at a time", 1), ("batched", args.max_batch)):
                server = PolicyServer(
                    policy, uri, host="127.0.0.1", port=0, max_batch=max_batch
                ).start_in_thread()
                try:
                    run_clients(server.url, frame, clients, 2)  # warm the batch sizes this row will use
                    wall, latencies, batches = run_clients(server.url, frame, clients, args.requests)
                finally:
                    server.stop()
                throughput = len(latencies) / wall
                baseline = baseline or throughput
                table.add_row(
                    str(clients),
                    label,
                    f"{throughput:.1f}",
                    f"{np.percentile(latencies, 50):.0f}",
                    f"{np.percentile(latencies, 95):.0f}",
                    f"{np.mean(batches):.1f}",
                    f"{throughput / baseline:.2f}x",
                )
                console.print(f"{clients} clients, {label}: {throughput:.1f} requests/s")
        console.print(table)
        console.print(
            f"targets: 20 clients batched ≥ {THROUGHPUT_TARGET:.0f}x one-at-a-time, "
            f"p95 ≤ {P95_TARGET_MS:.0f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
