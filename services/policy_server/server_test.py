import urllib.request

import msgpack
import numpy as np
import pytest
from websockets.sync.client import connect

from libs.policy_api.registry import make_policy
from libs.policy_api.remote import RemoteInferenceError, RemotePolicyError, packb, unpackb
from libs.policy_api.types import CameraInput, PolicyMetadata, PolicySpec
from services.policy_server.server import PolicyServer, UnservablePolicyError


class EchoPolicy:
    """Returns the state repeated over the chunk, so a round trip is checkable exactly."""

    spec = PolicySpec(cameras=(CameraInput("overhead", 24, 32),), chunk_length=4, n_action_steps=2)
    metadata = PolicyMetadata(checkpoint_id="echo", step=7)

    def __init__(self) -> None:
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1

    def infer(self, observation) -> np.ndarray:
        if observation["task"] == "explode":
            raise RuntimeError("boom\nsecond line")
        return np.tile(np.asarray(observation["observation.state"], np.float32), (4, 1))

    def last_normalized_inputs(self):
        return {
            "observation.state": np.zeros(6, np.float32),
            "observation.images.overhead": np.zeros((24, 32, 3)),
        }


def observation(value: float = 1.0, task: str = "put the block in the bowl") -> dict:
    return {
        "observation.state": np.full(6, value, np.float32),
        "observation.images.overhead": np.zeros((24, 32, 3), np.uint8),
        "task": task,
    }


@pytest.fixture(scope="module")
def server():
    policy = EchoPolicy()
    running = PolicyServer(policy, "echo", host="127.0.0.1", port=0).start_in_thread()
    yield running
    running.stop()


def test_wire_format_matches_openpi_msgpack_numpy() -> None:
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    raw = msgpack.unpackb(packb({"a": array, "s": np.int64(3)}))
    assert raw["a"][b"__ndarray__"] is True and raw["a"][b"dtype"] == "<f4" and raw["a"][b"shape"] == [2, 3]
    assert raw["s"][b"__npgeneric__"] is True
    decoded = unpackb(packb({"a": array, "s": np.int64(3), "t": "text"}))
    np.testing.assert_array_equal(decoded["a"], array)
    assert decoded["s"] == 3 and decoded["s"].dtype == np.int64 and decoded["t"] == "text"
    with pytest.raises(ValueError, match="object"):
        packb({"o": np.array([object()])})


def test_remote_client_round_trip_metadata_and_reset(server: PolicyServer) -> None:
    policy = make_policy(f"remote:{server.url}")
    assert policy.spec == EchoPolicy.spec
    assert policy.metadata.step == 7 and policy.metadata.checkpoint_id == "echo"
    chunk = policy.infer(observation(3.5))
    np.testing.assert_array_equal(chunk, np.full((4, 6), 3.5, np.float32))
    assert chunk.flags.writeable
    assert policy.last_server_timing["infer_ms"] >= 0
    assert set(policy.last_normalized_inputs()) == {"observation.state"}  # small inputs only
    resets = server.policy.resets
    policy.reset()
    assert server.policy.resets == resets + 1
    policy.close()


def test_malformed_request_gets_an_error_and_the_server_keeps_serving(server: PolicyServer) -> None:
    with connect(server.url, compression=None, max_size=None) as raw, connect(server.url) as other:
        raw.recv(), other.recv()  # metadata frames
        raw.send(b"\xc1not msgpack")
        reply = raw.recv()
        assert isinstance(reply, str) and reply.startswith("bad request:") and "\n" not in reply
        raw.send(packb({"observation.state": np.zeros(6, np.float32)}))
        assert "lacks" in raw.recv()
        raw.send(packb(observation(task="explode")))
        failure = raw.recv()
        assert failure == "inference failed: RuntimeError: boom"
        # the same connection and another client are still served
        raw.send(packb(observation(2.0)))
        np.testing.assert_array_equal(unpackb(raw.recv())["actions"], np.full((4, 6), 2.0, np.float32))
        other.send(packb(observation(5.0)))
        assert unpackb(other.recv())["actions"][0, 0] == 5.0


def test_remote_client_raises_the_servers_error_line(server: PolicyServer) -> None:
    policy = make_policy(f"remote:{server.url}")
    with pytest.raises(RemoteInferenceError, match="lacks"):
        policy.infer({"task": "x"})
    policy.close()


def test_healthz(server: PolicyServer) -> None:
    url = server.url.replace("ws://", "http://") + "/healthz"
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200 and response.read() == b"OK\n"


def test_unreachable_server_is_one_clear_line() -> None:
    with pytest.raises(RemotePolicyError, match=r"cannot reach a policy server at ws://127\.0\.0\.1:9"):
        make_policy("remote:ws://127.0.0.1:9")


def test_policies_that_read_the_simulator_are_refused() -> None:
    class Privileged(EchoPolicy):
        def attach_env(self, env) -> None: ...

    with pytest.raises(UnservablePolicyError, match="NeedsEnv"):
        PolicyServer(Privileged(), "scripted")


def test_serve_cli_reports_a_bad_policy_string_in_one_line(capsys) -> None:
    from services.policy_server.serve import main

    assert main(["--policy", "nonsense:/x", "--port", "0"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: unknown policy backend 'nonsense'") and "\n" not in error
