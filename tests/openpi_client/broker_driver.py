"""Drive a policy server with openpi-client exactly as PyPI ships it, from its own environment.

    broker_driver.pex --url ws://127.0.0.1:8000 --calls 1000 --horizon 10 --reset-every 100

Runs in the ``openpi_client`` resolve (openpi-client, numpy<2, no so101lab code), so what it proves is what a
user's robot process sees: ``WebsocketClientPolicy`` for the connection and metadata, ``ActionChunkBroker``
handing out one action per call. Prints one JSON line: calls made, calls that returned exactly the next row
of the chunk the server sent, the reply's keys, errors by first line, and this environment's versions.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from importlib import metadata as distributions

import numpy as np
from openpi_client.action_chunk_broker import ActionChunkBroker
from openpi_client.base_policy import BasePolicy
from openpi_client.websocket_client_policy import WebsocketClientPolicy


class RecordingPolicy(BasePolicy):
    """The client as the broker sees it, keeping each chunk it fetched so every step can be checked."""

    def __init__(self, client: WebsocketClientPolicy) -> None:
        self.client = client
        self.chunks: list[dict] = []

    def infer(self, obs: dict) -> dict:
        reply = self.client.infer(obs)
        self.chunks.append(reply)
        return reply

    def reset(self) -> None:
        self.client.reset()


def observation(spec: dict, rng: np.random.Generator, task: str) -> dict:
    """What a robot process sends: the state and one image per camera the served policy declares."""
    obs = {
        "observation.state": rng.uniform(-30, 30, spec["state_dim"]).astype(np.float32),
        "task": task,
    }
    for camera in spec["cameras"]:
        suffix = "_depth" if camera.get("modality") == "depth" else ""
        shape = (camera["height"], camera["width"]) + (() if suffix else (3,))
        key = f"observation.images.{camera['name']}{suffix}"
        obs[key] = (
            rng.integers(0, 256, shape, dtype=np.uint8)
            if not suffix
            else rng.uniform(0, 1, shape).astype(np.float32)
        )
    return obs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--horizon", type=int, default=10)
    parser.add_argument("--reset-every", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--task", default="put the block in the bowl")
    args = parser.parse_args(argv)

    client = WebsocketClientPolicy(args.url)
    spec = client.get_server_metadata()["spec"]
    recorder = RecordingPolicy(client)
    broker = ActionChunkBroker(recorder, action_horizon=args.horizon)
    rng = np.random.default_rng(args.seed)
    obs = observation(spec, rng, args.task)

    good, errors, reply_keys = 0, collections.Counter(), set()
    step_in_chunk = 0
    for call in range(args.calls):
        if args.reset_every and call and call % args.reset_every == 0:
            broker.reset()
            step_in_chunk = 0
        if step_in_chunk == 0:
            obs = observation(spec, rng, args.task)
        try:
            result = broker.infer(obs)
        except Exception as error:  # counted and reported: the test asserts there are none
            errors[
                f"{type(error).__name__}: {str(error).strip().splitlines()[-1] if str(error).strip() else ''}"
            ] += 1
            step_in_chunk = 0
            continue
        chunk = recorder.chunks[-1]
        reply_keys |= set(chunk)
        action = result.get("actions")
        expected = np.asarray(chunk["actions"])[step_in_chunk]
        if (
            isinstance(action, np.ndarray)
            and action.shape == (spec["action_dim"],)
            and np.array_equal(action, expected)
            and np.all(np.isfinite(action))
        ):
            good += 1
        step_in_chunk = (step_in_chunk + 1) % args.horizon
    print(
        json.dumps(
            {
                "calls": args.calls,
                "good": good,
                "chunks_fetched": len(recorder.chunks),
                "reply_keys": sorted(reply_keys),
                "errors": dict(errors),
                "numpy": np.__version__,
                "openpi_client": distributions.version("openpi-client"),
                "python": sys.version.split()[0],
            }
        )
    )
    return 0 if good == args.calls else 1


if __name__ == "__main__":
    sys.exit(main())
