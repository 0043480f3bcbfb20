"""A policy server built the way openpi's ``serve_policy`` builds one, from openpi-client's own parts.

    openpi_server.pex --port 0 --chunk 8     (prints ``listening on PORT`` once it accepts connections)

openpi's server package is not on PyPI (the ``openpi`` name there is an empty placeholder), so this server
follows openpi's ``WebsocketPolicyServer`` protocol with the pieces PyPI does ship: openpi-client's
``msgpack_numpy`` packer and ``BasePolicy``, and ``websockets``' asyncio server. On connect it sends its
metadata (openpi's policy metadata: no so101lab spec); each observation gets the policy's action dict plus
``server_timing``; an exception sends the traceback as a text frame and closes the connection with 1011, as
openpi does. It runs in the ``openpi_client`` resolve: no so101lab code on either side of the protocol.

The served policy is openpi-shaped (``observation/state``, ``observation/image``, ``observation/wrist_image``,
``prompt``) and deterministic, so a client can check every number: ``actions[t] = state + t`` and the
gripper column is the mean of the base image / 2.55; the prompt ``fail`` raises.
"""

from __future__ import annotations

import argparse
import asyncio
import http
import sys
import time
import traceback

import numpy as np
import websockets.asyncio.server
import websockets.frames
from openpi_client import msgpack_numpy
from openpi_client.base_policy import BasePolicy


class ArithmeticPolicy(BasePolicy):
    def __init__(self, chunk: int) -> None:
        self.chunk = chunk

    def infer(self, obs: dict) -> dict:
        if obs.get("prompt") == "fail":
            raise ValueError("the prompt asked this policy to fail")
        state = np.asarray(obs["observation/state"], dtype=np.float32)
        image = np.asarray(obs["observation/image"])
        wrist = np.asarray(obs["observation/wrist_image"])
        if image.ndim != 3 or wrist.ndim != 3:
            raise ValueError(f"images must be HxWx3, got {image.shape} and {wrist.shape}")
        actions = state[None, :] + np.arange(self.chunk, dtype=np.float32)[:, None]
        actions[:, -1] = float(image.mean()) / 2.55  # the gripper, 0-100
        return {"actions": actions}


async def serve(policy: BasePolicy, port: int, metadata: dict) -> None:
    packer = msgpack_numpy.Packer()

    async def handler(connection: websockets.asyncio.server.ServerConnection) -> None:
        await connection.send(packer.pack(metadata))
        previous_total: float | None = None
        while True:
            try:
                started = time.monotonic()
                obs = msgpack_numpy.unpackb(await connection.recv())
                infer_started = time.monotonic()
                action = policy.infer(obs)
                action["server_timing"] = {"infer_ms": (time.monotonic() - infer_started) * 1000}
                if previous_total is not None:
                    action["server_timing"]["prev_total_ms"] = previous_total * 1000
                await connection.send(packer.pack(action))
                previous_total = time.monotonic() - started
            except websockets.ConnectionClosed:
                break
            except Exception:
                await connection.send(traceback.format_exc())
                await connection.close(
                    code=websockets.frames.CloseCode.INTERNAL_ERROR,
                    reason="Internal server error. Traceback included in previous frame.",
                )
                break

    def health(connection, request):
        if request.path == "/healthz":
            return connection.respond(http.HTTPStatus.OK, "OK\n")
        return None

    async with websockets.asyncio.server.serve(
        handler, "127.0.0.1", port, compression=None, max_size=None, process_request=health
    ) as server:
        print(f"listening on {server.sockets[0].getsockname()[1]}", flush=True)
        await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--chunk", type=int, default=8)
    args = parser.parse_args(argv)
    try:
        asyncio.run(
            serve(ArithmeticPolicy(args.chunk), args.port, {"policy": "arithmetic", "chunk": args.chunk})
        )
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
