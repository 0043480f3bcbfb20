"""``remote:ws://host:port`` — a policy served by ``services/policy_server`` over openpi's websocket protocol.

Stack-free (websockets + msgpack), so any resolve can evaluate a policy that lives in another one.

The wire format is openpi's msgpack-numpy: an ndarray travels as the map
``{b"__ndarray__": True, b"data": raw bytes, b"dtype": dtype.str, b"shape": shape}`` and a numpy scalar as
``{b"__npgeneric__": True, b"data": value, b"dtype": dtype.str}``; object, void and complex arrays are
refused (openpi never pickles). The protocol: on connect the server sends one metadata frame; each
observation sent gets an action dict ``{"actions": (T, A), "server_timing": {...}}`` back, or a *text*
frame carrying the error.

Against ``services/policy_server`` this client also sends ``{RESET_KEY: True, "seed": n}`` for ``reset()``
(``n`` drawn from numpy's global RNG, which the harness seeds per episode, so a served episode is
reproducible) and asks for the normalised state with ``NORMALIZED_INPUTS_KEY`` (opt-in: openpi-client's
``ActionChunkBroker`` slices every array of a reply, so nothing extra is sent unless asked for).

Against any other openpi server (openpi's own ``serve_policy``), whose metadata carries no spec, the spec
comes from the address: ``remote:ws://host:port?cameras=base:224x224,wrist:224x224&chunk=50&steps=10``,
and ``&keys=openpi`` sends openpi's example keys (``observation/state``, ``observation/image``,
``observation/wrist_image``, ``prompt``) instead of LeRobot's. ``reset()`` then stays on this side, as
openpi-client's does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import msgpack
import numpy as np

from libs.errors import LabError
from libs.policy_api.card import CheckpointCard
from libs.policy_api.registry import PolicyLoadError, register_backend
from libs.policy_api.types import (
    ENV_STATE_KEY,
    STATE_KEY,
    TASK_KEY,
    CameraInput,
    Observation,
    PolicySpec,
    SharesPrivilegedState,
)

SERVER_NAME = "so101lab.policy_server"
RESET_KEY = "__so101lab_reset__"
NORMALIZED_INPUTS_KEY = "__so101lab_normalized_inputs__"
ATTACH_KEY = "__so101lab_attach__"
#: openpi's example keys (LIBERO, DROID clients) for ``keys=openpi``: state, first camera, second camera, task
OPENPI_KEYS = ("observation/state", "observation/image", "observation/wrist_image", "prompt")
SERVE_COMMAND = "./pants run services/policy_server:serve -- --policy <policy> --port <port>"


class RemotePolicyError(PolicyLoadError):
    """The server cannot be reached, or it is not a so101lab policy server; the message names the fix."""


class RemoteInferenceError(LabError, RuntimeError):
    """The server answered a request with an error (a text frame); the message is the server's line."""


# -- openpi's msgpack-numpy wire format ------------------------------------------------------------------
def _encode(obj: Any) -> Any:
    if isinstance(obj, np.ndarray | np.generic) and obj.dtype.kind in ("V", "O", "c"):
        raise ValueError(f"cannot send numpy dtype {obj.dtype} (object/void/complex) over msgpack-numpy")
    if isinstance(obj, np.ndarray):
        return {b"__ndarray__": True, b"data": obj.tobytes(), b"dtype": obj.dtype.str, b"shape": obj.shape}
    if isinstance(obj, np.generic):
        return {b"__npgeneric__": True, b"data": obj.item(), b"dtype": obj.dtype.str}
    return obj


def _decode(obj: dict[Any, Any]) -> Any:
    if b"__ndarray__" in obj:
        return np.ndarray(buffer=obj[b"data"], dtype=np.dtype(obj[b"dtype"]), shape=tuple(obj[b"shape"]))
    if b"__npgeneric__" in obj:
        return np.dtype(obj[b"dtype"]).type(obj[b"data"])
    return obj


def packb(obj: Any) -> bytes:
    return msgpack.packb(obj, default=_encode)


def unpackb(data: bytes) -> Any:
    """Arrays come back read-only, viewing the message buffer (no copy)."""
    return msgpack.unpackb(data, object_hook=_decode)


def _card_from_server(server: Mapping[str, Any]) -> CheckpointCard | None:
    """The card of the metadata frame; a server older than cards sent its fields as ``metadata``."""
    if server.get("card") is not None:
        return CheckpointCard.from_dict(server["card"])
    old = server.get("metadata")
    if not isinstance(old, Mapping):
        return None
    return CheckpointCard(
        scene=old.get("scene_config"),
        stats=old.get("dataset_stats"),
        step=old.get("step"),
        task=old.get("task"),
    )


# -- the client ------------------------------------------------------------------------------------------
class RemotePolicy:
    """A Policy (+ HasCard, ReportsNormalizedInputs) whose ``infer`` is a websocket round trip."""

    def __init__(self, uri: str, open_timeout_s: float = 10.0) -> None:
        from websockets.exceptions import InvalidHandshake, InvalidURI
        from websockets.sync.client import connect

        address, options = _split_options(uri if "://" in uri else f"ws://{uri}")
        self.uri = address
        try:
            self._socket = connect(
                self.uri, compression=None, max_size=None, open_timeout=open_timeout_s, legacy=True
            )
        except (OSError, TimeoutError, InvalidURI, InvalidHandshake) as error:
            raise RemotePolicyError(
                f"cannot reach a policy server at {self.uri} ({type(error).__name__}: {error}): start one "
                f"with `{SERVE_COMMAND}` and check the host and port"
            ) from error
        from websockets.exceptions import ConnectionClosed

        try:
            frame = self._socket.recv()
        except ConnectionClosed as error:  # the server went away between accepting and its first frame
            raise RemotePolicyError(
                f"policy server {self.uri} closed the connection before its metadata frame ({error}): check "
                "the server's log, restart it, then run the same command"
            ) from error
        server = unpackb(frame) if isinstance(frame, bytes) else None
        if not isinstance(server, Mapping):
            self._socket.close()
            raise RemotePolicyError(
                f"the server at {self.uri} sent no msgpack metadata frame: is it an openpi server?"
            )
        self.server_metadata: dict[str, Any] = dict(server)
        self.is_so101lab = server.get("server") == SERVER_NAME and "spec" in server
        if "spec" in server:
            self._spec = PolicySpec.from_dict(server["spec"])
        else:
            self._spec = _spec_from_options(self.uri, options)
        self._openpi_keys = options.get("keys") == "openpi"
        self._card = _card_from_server(server) if self.is_so101lab else None
        self.last_server_timing: dict[str, float] = {}
        self._last_normalized: dict[str, np.ndarray] = {}

    @property
    def spec(self) -> PolicySpec:
        return self._spec

    @property
    def card(self) -> CheckpointCard | None:
        """The served checkpoint's card, as its server sent it (None from an openpi server)."""
        return self._card

    def _round_trip(self, message: Mapping[str, Any]) -> dict[str, Any]:
        from websockets.exceptions import ConnectionClosed

        try:
            self._socket.send(packb(dict(message)))
            reply = self._socket.recv()
        except ConnectionClosed as error:
            raise RemoteInferenceError(
                f"policy server {self.uri} closed the connection ({error}): check the server's log, then "
                "reconnect (restart the evaluation)"
            ) from error
        if isinstance(reply, str):
            line = reply.strip().splitlines()[-1] if reply.strip() else "(empty error frame)"
            raise RemoteInferenceError(f"policy server {self.uri}: {line}")
        return unpackb(reply)

    def reset(self) -> None:
        self._last_normalized = {}
        if self.is_so101lab:
            self._round_trip({RESET_KEY: True, "seed": int(np.random.randint(0, 2**31 - 1))})

    def infer(self, observation: Observation) -> np.ndarray:
        if self._openpi_keys:
            request = self._with_openpi_keys(observation)
        else:
            request = dict(observation)
        if self.is_so101lab:
            request[NORMALIZED_INPUTS_KEY] = True
        reply = self._round_trip(request)
        if not isinstance(reply, Mapping) or "actions" not in reply:
            raise RemoteInferenceError(f"policy server {self.uri}: its reply has no 'actions'")
        self.last_server_timing = dict(reply.get("server_timing", {}))
        self._last_normalized = dict(reply.get("normalized_inputs", {}))
        return np.array(reply["actions"], dtype=np.float32)

    def _with_openpi_keys(self, observation: Observation) -> dict[str, Any]:
        state_key, *camera_keys, prompt_key = OPENPI_KEYS
        request: dict[str, Any] = {state_key: observation[STATE_KEY]}
        for openpi_key, camera in zip(camera_keys, self._spec.cameras, strict=False):
            request[openpi_key] = observation[camera.key]
        if TASK_KEY in observation:
            request[prompt_key] = observation[TASK_KEY]
        return request

    def last_normalized_inputs(self) -> Mapping[str, np.ndarray]:
        return self._last_normalized

    def close(self) -> None:
        self._socket.close()


def _split_options(uri: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(uri)
    options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    return urlunsplit(parts._replace(query="")), options


_SPEC_OPTIONS = "cameras=NAME:HxW,... chunk=T steps=N [state_dim=6 action_dim=6 keys=openpi]"


def _spec_from_options(uri: str, options: Mapping[str, str]) -> PolicySpec:
    """The spec of a policy served by a server that does not send one (openpi's own server)."""
    unknown = sorted(set(options) - {"cameras", "chunk", "steps", "state_dim", "action_dim", "keys"})
    if unknown or "chunk" not in options:
        problem = f"unknown options {unknown}" if unknown else "no spec in its metadata and no ?chunk= option"
        raise RemotePolicyError(
            f"the server at {uri}: {problem}: describe the served policy in the address, "
            f"remote:{uri}?{_SPEC_OPTIONS.replace(' ', '&')}"
        )
    try:
        cameras = []
        for item in filter(None, options.get("cameras", "").split(",")):
            name, _, size = item.partition(":")
            height, _, width = size.partition("x")
            cameras.append(CameraInput(name, int(height), int(width)))
        chunk = int(options["chunk"])
        return PolicySpec(
            cameras=tuple(cameras),
            state_dim=int(options.get("state_dim", 6)),
            action_dim=int(options.get("action_dim", 6)),
            chunk_length=chunk,
            n_action_steps=int(options.get("steps", chunk)),
        )
    except ValueError as error:
        raise RemotePolicyError(
            f"cannot read the policy spec from {uri}'s options ({error}): "
            f"use ?{_SPEC_OPTIONS.replace(' ', '&')}"
        ) from error


class RemoteEnvStatePolicy:
    """``remote:`` of a served policy that plans from the simulator's state (the scripted expert): a
    ``NeedsEnv`` policy here, sending the env's state after each reset and with every observation."""

    def __init__(self, remote: RemotePolicy) -> None:
        self.remote = remote
        self._env: Any = None

    @property
    def spec(self) -> PolicySpec:
        return self.remote.spec

    @property
    def card(self) -> CheckpointCard | None:
        return self.remote.card

    def reset(self) -> None:
        self.remote.reset()

    def attach_env(self, env: Any) -> None:
        self._env = env
        self.remote._round_trip({ATTACH_KEY: True, "state": _env_state(env)})

    def infer(self, observation: Observation) -> np.ndarray:
        if self._env is None:
            raise RemoteInferenceError(
                f"policy server {self.remote.uri} serves a policy that plans from the simulator's state: "
                "call attach_env(env) after every env.reset() (the evaluation harness does)"
            )
        return self.remote.infer({**observation, ENV_STATE_KEY: _env_state(self._env)})

    def last_normalized_inputs(self) -> Mapping[str, np.ndarray]:
        return self.remote.last_normalized_inputs()

    def close(self) -> None:
        self.remote.close()


def _env_state(env: Any) -> dict[str, Any]:
    # The scripted expert is the one served policy that reads the simulator; the env gives its snapshot as
    # plain numbers (SharesPrivilegedState), so this module needs nothing from libs.sim.
    unwrapped = getattr(env, "unwrapped", env)
    if not isinstance(unwrapped, SharesPrivilegedState):
        raise RemoteInferenceError(
            f"{type(unwrapped).__name__} has no privileged_state(): the served policy plans from the "
            "simulator's state, which only the bench's env (libs.sim.env) provides"
        )
    return unwrapped.privileged_state()


def load_policy(argument: str) -> RemotePolicy | RemoteEnvStatePolicy:
    if not argument:
        raise RemotePolicyError("remote needs an address: use remote:ws://host:port")
    policy = RemotePolicy(argument)
    if policy.is_so101lab and policy.server_metadata.get("needs_env_state"):
        return RemoteEnvStatePolicy(policy)
    return policy


def read_card(argument: str) -> CheckpointCard | None:
    """The served checkpoint's card, from the first frame of a short connection of its own (an evaluation
    decides its scene before any worker connects)."""
    policy = RemotePolicy(argument)
    try:
        return policy.card
    finally:
        policy.close()


register_backend("remote", load_policy, read_card=read_card)
