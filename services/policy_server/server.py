"""Serve any ``Policy`` over openpi's websocket protocol, to many clients at once.

Per connection: one metadata frame (msgpack: the policy's spec, its checkpoint card, the policy string),
then for every msgpack-numpy observation an action dict ``{"actions": (T, A) float32, "server_timing":
{"infer_ms", "prev_total_ms"}}`` — nothing else, because openpi-client's ``ActionChunkBroker`` slices every
array of the reply by chunk step. A client that wants the normalised state back (``remote:`` does, for the
contract checks) adds ``NORMALIZED_INPUTS_KEY: True`` to its observation. A request that cannot be served
gets a *text* frame with one line naming the problem (what openpi's client raises on) and the connection
stays open; other clients are unaffected. ``GET /healthz`` answers ``OK``.

Many clients: every connection has its own episode (``{RESET_KEY: True, "seed": n}`` resets only that
connection's), so a policy with observation history or an action queue never mixes clients. A ``BatchPolicy``
(LeRobot, JAX) keeps one ``EpisodeState`` per connection and the requests waiting while a forward pass runs
go into the next pass together; any other policy gets one instance per connection (``new_client_policy``)
and its requests run one after another. Inference runs on one worker thread, never on the event loop, so
connections are accepted and health checks answered while a batch is computed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import http
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from websockets.asyncio.server import Request, Response, Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from libs.compute_threads import apply_threads, choose_threads
from libs.errors import LabError
from libs.policy_api.card import card_of
from libs.policy_api.remote import ATTACH_KEY, NORMALIZED_INPUTS_KEY, RESET_KEY, SERVER_NAME, packb, unpackb
from libs.policy_api.types import (
    ENV_STATE_KEY,
    STATE_KEY,
    AttachesEnvState,
    BatchPolicy,
    EpisodeState,
    NeedsEnv,
    Policy,
    ReportsNormalizedInputs,
)

logger = logging.getLogger(__name__)

#: normalised inputs up to this many values travel back to a client that asks (the state, not the images)
SMALL_INPUT_SIZE = 64
#: the most requests one forward pass takes (the rest wait for the next pass)
DEFAULT_MAX_BATCH = 32


#: The forward pass leaves the event loop (receiving, decoding, answering) a core of those given
#: (``libs.compute_threads``: less those busy with other work). Measured with 20 ACT clients on 2 cores
#: (``benchmarks: policy_server``): two torch threads spin against the event loop and serve fewer requests
#: than one.
EVENT_LOOP_RESERVE = {"reserved": 1, "reserved_for": "the event loop"}


def default_inference_threads() -> int:
    """Threads for the forward pass on this machine's idle cores: every core this process may use but the
    one the event loop keeps (or the user's OMP_NUM_THREADS)."""
    return choose_threads(1, sample_busy=False, **EVENT_LOOP_RESERVE).threads


def limit_inference_threads(threads: int) -> None:
    """Cap the CPU threads of the stack a policy will load (before it is imported): torch's intra-op pool,
    the BLAS libraries and XLA's pool (``libs.compute_threads.apply_threads``)."""
    apply_threads(threads)


class BadRequest(ValueError):
    """An observation this policy cannot take; the message is the one line sent back."""


class UnservablePolicyError(LabError, ValueError):
    """A policy that cannot run away from the simulator (it reads env state)."""


def server_metadata(policy: Policy, policy_uri: str) -> dict[str, Any]:
    card = card_of(policy)
    return {
        "server": SERVER_NAME,
        "policy": policy_uri,
        "spec": policy.spec.to_dict(),
        "card": card.to_dict() if card is not None else None,
        "batched": isinstance(policy, BatchPolicy),
        # the client sends its env's state: after each reset ({ATTACH_KEY: True, "state": ...}) and with
        # every observation (under ENV_STATE_KEY); remote: does both
        "needs_env_state": isinstance(policy, NeedsEnv),
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
    if isinstance(policy, NeedsEnv) and not isinstance(request.get(ENV_STATE_KEY), Mapping):
        raise BadRequest(
            f"this policy plans from the simulator's state: send it under {ENV_STATE_KEY!r} with every "
            "observation and attach it after each reset (remote: does both)"
        )
    return {key: value for key, value in request.items() if key != NORMALIZED_INPUTS_KEY}


def _small(inputs: Mapping[str, Any] | None) -> dict[str, np.ndarray]:
    small = {}
    for key, value in (inputs or {}).items():
        array = np.asarray(value)
        if array.size <= SMALL_INPUT_SIZE:
            small[key] = array
    return small


def _new_seed() -> int:
    return int(np.random.default_rng().integers(0, 2**31 - 1))


@dataclasses.dataclass
class Served:
    """What one request got: actions (or the error that stopped them), the small normalised inputs."""

    actions: np.ndarray | None = None
    normalized_inputs: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    infer_s: float = 0.0
    batch_size: int = 1
    error: Exception | None = None


class ClientSession:
    """One connection's episode: an ``EpisodeState`` in the shared ``BatchPolicy``, or its own policy."""

    def __init__(self, shared: Policy, new_client_policy: Callable[[], Policy] | None) -> None:
        self.batched = isinstance(shared, BatchPolicy)
        self.shared = shared
        self._new_client_policy = new_client_policy
        self.episode: EpisodeState | None = None
        self.policy: Policy | None = None

    def attach(self, state: Mapping[str, Any]) -> None:
        """Runs on the inference thread: the client's env state after its reset (``AttachesEnvState``)."""
        self.ensure_started()
        if not isinstance(self.policy, AttachesEnvState):
            raise BadRequest("this policy does not plan from the env's state: send no attach messages")
        self.policy.attach_state(state)

    def reset(self, seed: int | None) -> None:
        """Runs on the inference thread. ``seed`` keeps a remote episode reproducible; None draws one."""
        seed = _new_seed() if seed is None else int(seed)
        if self.batched:
            self.episode = self.shared.new_episode(seed)  # type: ignore[attr-defined]
            return
        if self.policy is None:
            self.policy = self._new_client_policy() if self._new_client_policy else self.shared
        np.random.seed(seed)  # what the harness does before reset(): the policy seeds itself from it
        self.policy.reset()

    def ensure_started(self) -> None:
        if (self.batched and self.episode is None) or (not self.batched and self.policy is None):
            self.reset(None)


@dataclasses.dataclass
class _Pending:
    session: ClientSession
    observation: dict[str, Any] | None  # None: a reset, or an attach when ``attach`` is set
    seed: int | None
    future: asyncio.Future[Served]
    attach: Mapping[str, Any] | None = None


class BatchingExecutor:
    """Takes every request waiting when the inference thread frees up into one forward pass."""

    def __init__(self, policy: Policy, max_batch: int = DEFAULT_MAX_BATCH) -> None:
        self.policy = policy
        self.max_batch = max_batch
        self._thread = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._serve_queue())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._thread.shutdown(wait=False, cancel_futures=True)

    @property
    def waiting(self) -> int:
        """Requests queued for the next forward pass."""
        return self._queue.qsize() if self._queue is not None else 0

    async def submit(
        self,
        session: ClientSession,
        observation: dict[str, Any] | None,
        seed: int | None = None,
        attach: Mapping[str, Any] | None = None,
    ) -> Served:
        assert self._queue is not None, "BatchingExecutor.start() first"
        future: asyncio.Future[Served] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(session, observation, seed, future, attach))
        return await future

    async def _serve_queue(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            pending = [await self._queue.get()]
            while not self._queue.empty() and len(pending) < self.max_batch:
                pending.append(self._queue.get_nowait())
            try:
                results = await loop.run_in_executor(self._thread, self._run, pending)
            except Exception as error:  # the thread pool itself failed: every waiting client hears it
                results = [Served(error=error) for _ in pending]
            for request, result in zip(pending, results, strict=True):
                if not request.future.done():
                    request.future.set_result(result)

    # -- on the inference thread ---------------------------------------------------------------------------
    def _run(self, pending: Sequence[_Pending]) -> list[Served]:
        results: list[Served | None] = [None] * len(pending)
        inferences = []
        for index, request in enumerate(pending):
            if request.attach is not None:
                results[index] = self._guarded(lambda r=request: self._attach(r))
            elif request.observation is None:
                results[index] = self._guarded(lambda r=request: self._reset(r))
            else:
                inferences.append(index)
        batched = [index for index in inferences if pending[index].session.batched]
        for index in inferences:
            if not pending[index].session.batched:
                results[index] = self._guarded(lambda r=pending[index]: self._infer_one(r))
        if batched:
            for index, result in zip(batched, self._infer_batch([pending[i] for i in batched]), strict=True):
                results[index] = result
        return [
            result if result is not None else Served(error=RuntimeError("not served")) for result in results
        ]

    @staticmethod
    def _guarded(work: Callable[[], Served]) -> Served:
        try:
            return work()
        except Exception as error:
            return Served(error=error)

    @staticmethod
    def _attach(request: _Pending) -> Served:
        assert request.attach is not None
        request.session.attach(request.attach)
        return Served()

    @staticmethod
    def _reset(request: _Pending) -> Served:
        request.session.reset(request.seed)
        return Served()

    @staticmethod
    def _checked(actions: np.ndarray) -> np.ndarray:
        if not np.all(np.isfinite(actions)):
            raise RuntimeError("the policy returned non-finite actions (NaN/inf) for this observation")
        return actions

    def _infer_one(self, request: _Pending) -> Served:
        session = request.session
        session.ensure_started()
        assert session.policy is not None and request.observation is not None
        started = time.monotonic()
        actions = np.asarray(session.policy.infer(request.observation), dtype=np.float32)
        elapsed = time.monotonic() - started
        small = (
            _small(session.policy.last_normalized_inputs())
            if isinstance(session.policy, ReportsNormalizedInputs)
            else {}
        )
        return Served(actions=self._checked(actions), normalized_inputs=small, infer_s=elapsed)

    def _infer_batch(self, requests: Sequence[_Pending]) -> list[Served]:
        policy: Any = self.policy
        started = time.monotonic()
        try:
            for request in requests:
                request.session.ensure_started()
            chunks = [
                np.asarray(chunk, dtype=np.float32)
                for chunk in policy.infer_batch(
                    [request.observation for request in requests],
                    [request.session.episode for request in requests],
                )
            ]
        except Exception as error:
            if len(requests) == 1:
                return [Served(error=error)]
            # One bad request must not fail the others: serve them one by one to find it.
            return [served for request in requests for served in self._infer_batch([request])]
        elapsed = time.monotonic() - started
        results = []
        for request, chunk in zip(requests, chunks, strict=True):
            episode = request.session.episode
            try:
                actions = self._checked(chunk)
            except RuntimeError as error:
                results.append(Served(error=error))
                continue
            small = _small(episode.normalized_inputs if episode is not None else None)
            results.append(Served(actions, small, elapsed, batch_size=len(requests)))
        return results


def _error_text(error: Exception) -> str:
    """The one-line text frame a client gets for a request that failed."""
    line = str(error).splitlines()[0] if str(error) else ""
    if isinstance(error, BadRequest):
        return f"bad request: {line}"
    return f"inference failed: {type(error).__name__}: {line}"


class PolicyServer:
    def __init__(
        self,
        policy: Policy,
        policy_uri: str,
        host: str = "0.0.0.0",
        port: int = 8000,
        new_client_policy: Callable[[], Policy] | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        """``new_client_policy`` builds one policy per connection for policies that cannot batch (each client
        its own episode state); without it such a policy is shared, which suits stateless policies only."""
        if isinstance(policy, NeedsEnv) and not isinstance(policy, AttachesEnvState):
            raise UnservablePolicyError(
                f"policy {policy_uri!r} reads the simulator itself (NeedsEnv without attach_state) and "
                "cannot be served over the network: evaluate it in-process with services/eval:sweep"
            )
        self.policy, self.policy_uri = policy, policy_uri
        self.host, self.port = host, port
        self._new_client_policy = new_client_policy
        self._metadata_frame = packb(server_metadata(policy, policy_uri))
        self.executor = BatchingExecutor(policy, max_batch)
        self._server: Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    # -- request handling ------------------------------------------------------------------------------
    async def _handle(self, connection: ServerConnection) -> None:
        logger.info("connection from %s", connection.remote_address)
        session = ClientSession(self.policy, self._new_client_policy)
        await connection.send(self._metadata_frame)
        previous_total_ms: float | None = None
        while True:
            try:
                message = await connection.recv()
            except ConnectionClosed:
                break
            started = time.monotonic()
            try:
                reply = await self._reply(session, message, previous_total_ms)
                await connection.send(packb(reply))
            except ConnectionClosed:
                break
            except Exception as error:
                bad_request = isinstance(error, BadRequest)
                text = _error_text(error)
                logger.warning("%s: %s", connection.remote_address, text, exc_info=not bad_request)
                try:
                    await connection.send(text)
                except ConnectionClosed:
                    break
            previous_total_ms = (time.monotonic() - started) * 1000.0

    async def _reply(
        self, session: ClientSession, message: str | bytes, previous_total_ms: float | None
    ) -> dict[str, Any]:
        """Decodes one frame (a reset, an attach or an observation), serves it and returns the reply; a bad
        frame raises BadRequest, a failed inference the policy's error."""
        if isinstance(message, str):
            raise BadRequest("send observations as binary msgpack-numpy frames, not text")
        try:
            request = unpackb(message)
        except Exception as error:
            raise BadRequest(f"the frame is not msgpack-numpy ({type(error).__name__}: {error})") from error
        if isinstance(request, Mapping) and request.get(RESET_KEY):
            served = await self.executor.submit(session, None, request.get("seed"))
            if served.error is not None:
                raise served.error
            return {"reset": True}
        if isinstance(request, Mapping) and request.get(ATTACH_KEY):
            state = request.get("state")
            if not isinstance(state, Mapping):
                raise BadRequest("an attach message carries the env's state as a map under 'state'")
            served = await self.executor.submit(session, None, attach=state)
            if served.error is not None:
                raise served.error
            return {"attached": True}
        observation = validate_observation(request, self.policy)
        served = await self.executor.submit(session, observation, None)
        if served.error is not None:
            raise served.error
        timing = {"infer_ms": served.infer_s * 1000.0, "batch_size": served.batch_size}
        if previous_total_ms is not None:
            timing["prev_total_ms"] = previous_total_ms
        reply: dict[str, Any] = {"actions": served.actions, "server_timing": timing}
        if request.get(NORMALIZED_INPUTS_KEY) and served.normalized_inputs:
            reply["normalized_inputs"] = served.normalized_inputs
        return reply

    @staticmethod
    def _health(connection: ServerConnection, request: Request) -> Response | None:
        if request.path == "/healthz":
            return connection.respond(http.HTTPStatus.OK, "OK\n")
        return None

    # -- running ---------------------------------------------------------------------------------------
    async def _start(self) -> Server:
        self.executor.start()
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
        try:
            await server.serve_forever()
        finally:
            await self.executor.stop()

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
            await self.executor.stop()

        asyncio.run_coroutine_threadsafe(close(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"ws://{host}:{self.port}"
