"""Serve any ``Policy`` over openpi's websocket protocol, so ``openpi-client`` and ``remote:ws://...`` work.

Per connection: one metadata frame (msgpack: the policy's spec, its checkpoint metadata, the policy string),
then for every msgpack-numpy observation an action dict ``{"actions": (T, A) float32, "server_timing":
{"infer_ms", "prev_total_ms"}}``. A request that cannot be served gets a *text* frame with one line naming
the problem (what openpi's client raises on) and the connection stays open; other clients are unaffected.
``GET /healthz`` answers ``OK``. Inference runs in a worker thread behind a lock, so the event loop keeps
accepting connections and answering health checks while a chunk is computed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import http
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
from websockets.asyncio.server import Request, Response, Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from libs.policy_api.remote import RESET_KEY, packb, unpackb
from libs.policy_api.types import STATE_KEY, HasMetadata, NeedsEnv, Policy, ReportsNormalizedInputs

logger = logging.getLogger(__name__)

#: normalised inputs up to this many values travel back with each reply (the state, not the images)
SMALL_INPUT_SIZE = 64


class BadRequest(ValueError):
    """An observation this policy cannot take; the message is the one line sent back."""


class UnservablePolicyError(ValueError):
    """A policy that cannot run away from the simulator (it reads env state)."""


def server_metadata(policy: Policy, policy_uri: str) -> dict[str, Any]:
    metadata = dataclasses.asdict(policy.metadata) if isinstance(policy, HasMetadata) else None
    return {
        "server": "so101lab.policy_server",
        "policy": policy_uri,
        "spec": policy.spec.to_dict(),
        "metadata": metadata,
    }


def validate_observation(request: Any, policy: Policy) -> dict[str, Any]:
    if not isinstance(request, Mapping):
        raise BadRequest(f"an observation must be a map of keys to arrays, got {type(request).__name__}")
    spec = policy.spec
    missing = [key for key in spec.observation_keys if key not in request]
    if missing:
        raise BadRequest(f"observation lacks {missing}; this policy needs {list(spec.observation_keys)}")
    state = request[STATE_KEY]
    if not isinstance(state, np.ndarray) or state.shape != (spec.state_dim,):
        shape = getattr(state, "shape", type(state).__name__)
        raise BadRequest(f"{STATE_KEY} must be a float array of shape ({spec.state_dim},), got {shape}")
    for camera in spec.cameras:
        image = request[camera.key]
        if not isinstance(image, np.ndarray) or image.ndim not in (2, 3):
            raise BadRequest(f"{camera.key} must be an image array (HxWx3 uint8 or HxW depth)")
    return dict(request)


class PolicyServer:
    def __init__(self, policy: Policy, policy_uri: str, host: str = "0.0.0.0", port: int = 8000) -> None:
        if isinstance(policy, NeedsEnv):
            raise UnservablePolicyError(
                f"policy {policy_uri!r} reads the simulator's state (NeedsEnv) and cannot be served over the "
                "network: evaluate it in-process with services/eval:sweep"
            )
        self.policy, self.policy_uri = policy, policy_uri
        self.host, self.port = host, port
        self._metadata_frame = packb(server_metadata(policy, policy_uri))
        self._lock = threading.Lock()
        self._server: Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    # -- request handling ------------------------------------------------------------------------------
    def _infer(self, observation: dict[str, Any]) -> tuple[np.ndarray, dict[str, np.ndarray], float]:
        with self._lock:
            started = time.monotonic()
            actions = np.asarray(self.policy.infer(observation), dtype=np.float32)
            elapsed = time.monotonic() - started
            small: dict[str, np.ndarray] = {}
            if isinstance(self.policy, ReportsNormalizedInputs):
                for key, value in (self.policy.last_normalized_inputs() or {}).items():
                    array = np.asarray(value)
                    if array.size <= SMALL_INPUT_SIZE:
                        small[key] = array
        if not np.all(np.isfinite(actions)):
            raise RuntimeError("the policy returned non-finite actions (NaN/inf) for this observation")
        return actions, small, elapsed

    def _reset(self) -> None:
        with self._lock:
            self.policy.reset()

    async def _handle(self, connection: ServerConnection) -> None:
        logger.info("connection from %s", connection.remote_address)
        await connection.send(self._metadata_frame)
        previous_total_ms: float | None = None
        while True:
            try:
                message = await connection.recv()
            except ConnectionClosed:
                break
            started = time.monotonic()
            try:
                if isinstance(message, str):
                    raise BadRequest("send observations as binary msgpack-numpy frames, not text")
                try:
                    request = unpackb(message)
                except Exception as error:
                    raise BadRequest(
                        f"the frame is not msgpack-numpy ({type(error).__name__}: {error})"
                    ) from error
                if isinstance(request, Mapping) and request.get(RESET_KEY):
                    await asyncio.to_thread(self._reset)
                    reply: dict[str, Any] = {"reset": True}
                else:
                    observation = validate_observation(request, self.policy)
                    actions, small, infer_s = await asyncio.to_thread(self._infer, observation)
                    timing = {"infer_ms": infer_s * 1000.0}
                    if previous_total_ms is not None:
                        timing["prev_total_ms"] = previous_total_ms
                    reply = {"actions": actions, "server_timing": timing}
                    if small:
                        reply["normalized_inputs"] = small
                await connection.send(packb(reply))
            except ConnectionClosed:
                break
            except Exception as error:
                bad_request = isinstance(error, BadRequest)
                line = str(error).splitlines()[0] if str(error) else ""
                text = (
                    f"bad request: {line}"
                    if bad_request
                    else f"inference failed: {type(error).__name__}: {line}"
                )
                logger.warning("%s: %s", connection.remote_address, text, exc_info=not bad_request)
                try:
                    await connection.send(text)
                except ConnectionClosed:
                    break
            previous_total_ms = (time.monotonic() - started) * 1000.0

    @staticmethod
    def _health(connection: ServerConnection, request: Request) -> Response | None:
        if request.path == "/healthz":
            return connection.respond(http.HTTPStatus.OK, "OK\n")
        return None

    # -- running ---------------------------------------------------------------------------------------
    async def _start(self) -> Server:
        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            compression=None,
            max_size=None,
            process_request=self._health,
        )
        self.port = self._server.sockets[0].getsockname()[1] if self.port == 0 else self.port
        return self._server

    async def serve_async(self) -> None:
        server = await self._start()
        self._ready.set()
        await server.serve_forever()

    def serve_forever(self) -> None:
        asyncio.run(self.serve_async())

    def start_in_thread(self) -> PolicyServer:
        """Serve from a daemon thread (tests, benchmarks); ``self.port`` is the bound port once it returns."""

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self._start())
            self._ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="policy-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=30):
            raise RuntimeError(f"policy server did not start on {self.host}:{self.port}")
        return self

    def stop(self) -> None:
        if self._loop is None or self._server is None:
            return
        server, loop = self._server, self._loop

        async def close() -> None:
            server.close()
            await server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"ws://{host}:{self.port}"
