"""``remote:ws://host:port`` — a policy served by ``services/policy_server`` over openpi's websocket protocol.

Stack-free (websockets + msgpack), so any resolve can evaluate a policy that lives in another one.

The wire format is openpi's msgpack-numpy: an ndarray travels as the map
``{b"__ndarray__": True, b"data": raw bytes, b"dtype": dtype.str, b"shape": shape}`` and a numpy scalar as
``{b"__npgeneric__": True, b"data": value, b"dtype": dtype.str}``; object, void and complex arrays are
refused (openpi never pickles). The protocol: on connect the server sends one metadata frame; each
observation sent gets an action dict ``{"actions": (T, A), "server_timing": {...}}`` back, or a *text*
frame carrying the error. This client also sends ``{"__so101lab_reset__": True}`` for ``reset()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgpack
import numpy as np

from libs.policy_api.registry import PolicyLoadError, register_backend
from libs.policy_api.types import Observation, PolicyMetadata, PolicySpec

RESET_KEY = "__so101lab_reset__"
SERVE_COMMAND = "./pants run services/policy_server:serve -- --policy <policy> --port <port>"


class RemotePolicyError(PolicyLoadError):
    """The server cannot be reached, or it is not a so101lab policy server; the message names the fix."""


class RemoteInferenceError(RuntimeError):
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


# -- the client ------------------------------------------------------------------------------------------
class RemotePolicy:
    """A Policy (+ HasMetadata, ReportsNormalizedInputs) whose ``infer`` is a websocket round trip."""

    def __init__(self, uri: str, open_timeout_s: float = 10.0) -> None:
        from websockets.exceptions import InvalidHandshake, InvalidURI
        from websockets.sync.client import connect

        self.uri = uri if "://" in uri else f"ws://{uri}"
        try:
            self._socket = connect(
                self.uri, compression=None, max_size=None, open_timeout=open_timeout_s, legacy=True
            )
        except (OSError, TimeoutError, InvalidURI, InvalidHandshake) as error:
            raise RemotePolicyError(
                f"cannot reach a policy server at {self.uri} ({type(error).__name__}: {error}): start one "
                f"with `{SERVE_COMMAND}` and check the host and port"
            ) from error
        frame = self._socket.recv()
        server = unpackb(frame) if isinstance(frame, bytes) else None
        if not isinstance(server, Mapping) or "spec" not in server:
            self._socket.close()
            raise RemotePolicyError(
                f"the server at {self.uri} sent no so101lab policy spec in its metadata frame: serve the "
                f"policy with `{SERVE_COMMAND}`"
            )
        self.server_metadata: dict[str, Any] = dict(server)
        self._spec = PolicySpec.from_dict(server["spec"])
        self._metadata = PolicyMetadata(**(server.get("metadata") or {}))
        self.last_server_timing: dict[str, float] = {}
        self._last_normalized: dict[str, np.ndarray] = {}

    @property
    def spec(self) -> PolicySpec:
        return self._spec

    @property
    def metadata(self) -> PolicyMetadata:
        return self._metadata

    def _round_trip(self, message: Mapping[str, Any]) -> dict[str, Any]:
        self._socket.send(packb(dict(message)))
        reply = self._socket.recv()
        if isinstance(reply, str):
            raise RemoteInferenceError(f"policy server {self.uri}: {reply.strip()}")
        return unpackb(reply)

    def reset(self) -> None:
        self._round_trip({RESET_KEY: True})

    def infer(self, observation: Observation) -> np.ndarray:
        reply = self._round_trip(observation)
        self.last_server_timing = dict(reply.get("server_timing", {}))
        self._last_normalized = dict(reply.get("normalized_inputs", {}))
        return np.array(reply["actions"], dtype=np.float32)

    def last_normalized_inputs(self) -> Mapping[str, np.ndarray]:
        return self._last_normalized

    def close(self) -> None:
        self._socket.close()


def load_policy(argument: str) -> RemotePolicy:
    if not argument:
        raise RemotePolicyError("remote needs an address: use remote:ws://host:port")
    return RemotePolicy(argument)


register_backend("remote", load_policy)
