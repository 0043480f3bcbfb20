"""JAX policy speed: train-step time and inference latency per config, and the websocket round trip.

    PYTHONPATH=. python -m benchmarks.jax_policy --configs so101_test,so101_cpu --repeats 30

Prints two tables:
- per config: compile time of the train step, seconds per train step at the config's batch size (steps/s),
  compile time of sampling, and the latency of one chunk (batch 1, 10 Euler steps), median and p90;
- serving: the same policy called in-process vs through ``services/policy_server`` on loopback with two
  224×224 RGB images per observation, via our ``remote:`` client and via openpi-client; overhead = median
  round trip − median in-process call (target ≤ 2 ms). A no-op policy isolates the transport cost.
Inputs are random (weights and images): speed does not depend on them. Compiles use the persistent cache,
so a second run reports cache-hit compile times.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from rich.console import Console
from rich.table import Table

from backends.jax_openpi import train as train_lib
from backends.jax_openpi import train_state
from backends.jax_openpi.compilation_cache import enable_compilation_cache
from backends.jax_openpi.config import TrainConfig, get_config
from backends.jax_openpi.data import compute_norm_stats, load_training_arrays
from backends.jax_openpi.fixtures import write_tiny_dataset
from backends.jax_openpi.model import Observation
from backends.jax_openpi.norm_stats import save_norm_stats
from libs.policy_api.registry import make_policy
from libs.policy_api.types import CameraInput, PolicySpec
from services.policy_server.server import PolicyServer

SERVING_IMAGE_SIZE = 224


def timed(call: Callable[[], object], repeats: int) -> list[float]:
    """Seconds per call, each call blocked until its result is ready."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        jax.block_until_ready(call())
        times.append(time.perf_counter() - started)
    return times


def p90(values: list[float]) -> float:
    return float(np.percentile(values, 90))


def random_batch(config: TrainConfig, batch: int) -> tuple[Observation, jax.Array]:
    rng = np.random.default_rng(0)
    model = config.model
    images = rng.integers(0, 256, (batch, 2, *model.image_size, 3), dtype=np.uint8)
    state = rng.normal(size=(batch, model.action_dim)).astype(np.float32)
    actions = rng.normal(size=(batch, model.action_horizon, model.action_dim)).astype(np.float32)
    return Observation(jnp.asarray(images), jnp.asarray(state)), jnp.asarray(actions)


def model_row(name: str, train_steps: int, repeats: int) -> list[str]:
    config = get_config(name)
    graphdef, params = train_state.init_model(config, 0)
    parameter_count = sum(leaf.size for leaf in jax.tree.leaves(params))
    state = train_state.new_train_state(config, params)
    train_step = train_state.make_train_step(graphdef, config)
    observation, actions = random_batch(config, config.batch_size)

    def one_step() -> object:
        state.params, state.opt_state, state.ema, info = train_step(
            state.params, state.opt_state, state.ema, jax.random.key(0), observation, actions
        )
        return info["loss"]

    compile_train = timed(one_step, 1)[0]
    step_times = timed(one_step, train_steps)

    num_steps = config.num_sample_steps
    sample = jax.jit(lambda p, rng, obs: nnx.merge(graphdef, p).sample_actions(rng, obs, num_steps=num_steps))
    single = Observation(observation.images[:1], observation.state[:1])
    compile_sample = timed(lambda: sample(state.params, jax.random.key(0), single), 1)[0]
    latencies = timed(lambda: sample(state.params, jax.random.key(1), single), repeats)
    step_median = statistics.median(step_times)
    return [
        name,
        f"{parameter_count / 1e6:.2f}M",
        f"{config.model.image_size[0]}×{config.model.image_size[1]}",
        str(config.batch_size),
        f"{compile_train:.1f}",
        f"{step_median * 1000:.0f}",
        f"{1 / step_median:.1f}",
        f"{compile_sample:.1f}",
        f"{statistics.median(latencies) * 1000:.1f}",
        f"{p90(latencies) * 1000:.1f}",
    ]


class NoOpPolicy:
    """Returns zeros at once: what remains of a round trip is the transport."""

    spec = PolicySpec(
        cameras=(
            CameraInput("overhead", SERVING_IMAGE_SIZE, SERVING_IMAGE_SIZE),
            CameraInput("wrist", SERVING_IMAGE_SIZE, SERVING_IMAGE_SIZE),
        ),
        chunk_length=50,
    )

    def reset(self) -> None:
        pass

    def infer(self, observation) -> np.ndarray:
        return np.zeros((50, 6), np.float32)


def serving_observation() -> dict:
    rng = np.random.default_rng(0)
    size = (SERVING_IMAGE_SIZE, SERVING_IMAGE_SIZE, 3)
    return {
        "observation.state": np.array([0, -30, 30, 60, 0, 50], np.float32),
        "observation.images.overhead": rng.integers(0, 256, size, dtype=np.uint8),
        "observation.images.wrist": rng.integers(0, 256, size, dtype=np.uint8),
        "task": "put the block in the bowl",
    }


def jax_checkpoint(workdir: Path) -> Path:
    """A so101_test checkpoint trained one step on 224×224 recordings (its spec asks for 224×224)."""
    config = get_config("so101_test")
    dataset = write_tiny_dataset(workdir / "data", episodes=1, length=8, height=224, width=224)
    out = workdir / "run"
    save_norm_stats(out / "assets", compute_norm_stats(load_training_arrays(dataset, config, False), config))
    train_lib.train(config, dataset, out, steps=1, progress=False)
    return out / "checkpoints" / "000001"


def round_trip_row(label: str, policy, observation: dict, repeats: int) -> list[str]:
    from openpi_client.websocket_client_policy import WebsocketClientPolicy

    server = PolicyServer(policy, label, host="127.0.0.1", port=0).start_in_thread()
    try:
        remote = make_policy(f"remote:{server.url}")
        openpi = WebsocketClientPolicy(host="127.0.0.1", port=server.port)
        calls = {
            "in-process": lambda: policy.infer(observation),
            "remote": lambda: remote.infer(observation),
            "openpi": lambda: openpi.infer(observation),
        }
        medians = {}
        for name, call in calls.items():
            timed(call, 3)  # warm-up: compiles, connections
            medians[name] = statistics.median(timed(call, repeats))
        remote.close()
    finally:
        server.stop()
    base = medians["in-process"]
    return [
        label,
        f"{base * 1000:.2f}",
        f"{medians['remote'] * 1000:.2f}",
        f"{(medians['remote'] - base) * 1000:.2f}",
        f"{medians['openpi'] * 1000:.2f}",
        f"{(medians['openpi'] - base) * 1000:.2f}",
    ]


def serving_rows(repeats: int) -> list[list[str]]:
    observation = serving_observation()
    with tempfile.TemporaryDirectory() as workdir:
        jax_policy = make_policy(f"jax_openpi:{jax_checkpoint(Path(workdir))}")
        return [
            round_trip_row("no-op", NoOpPolicy(), observation, repeats),
            round_trip_row("jax_openpi so101_test", jax_policy, observation, repeats),
        ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="so101_test,so101_cpu", help="comma list of config names")
    parser.add_argument("--train-steps", type=int, default=10, help="timed train steps per config")
    parser.add_argument("--repeats", type=int, default=30, help="timed inference calls per measurement")
    args = parser.parse_args()
    enable_compilation_cache()
    console = Console(width=170)
    console.print(f"jax {jax.__version__} on {jax.default_backend()} ({jax.devices()[0].device_kind})")

    table = Table(title="train step and inference per config")
    for column in (
        "config",
        "params",
        "image",
        "batch",
        "train compile s",
        "train ms/step",
        "steps/s",
        "sample compile s",
        "chunk ms (median)",
        "chunk ms (p90)",
    ):
        table.add_column(column, justify="right")
    for name in args.configs.split(","):
        table.add_row(*model_row(name.strip(), args.train_steps, args.repeats))
    console.print(table)

    serving = Table(
        title="policy server round trip on loopback (2 × 224×224 RGB + state; target overhead ≤ 2 ms)"
    )
    for column in (
        "policy",
        "in-process ms",
        "remote: ms",
        "remote: overhead ms",
        "openpi-client ms",
        "openpi-client overhead ms",
    ):
        serving.add_column(column, justify="right")
    for row in serving_rows(args.repeats):
        serving.add_row(*row)
    console.print(serving)


if __name__ == "__main__":
    main()
