import dataclasses
import os
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import msgpack
import numpy as np
import pytest
from websockets.sync.client import connect

from libs.policy_api.card import CheckpointCard
from libs.policy_api.registry import make_policy
from libs.policy_api.remote import (
    NORMALIZED_INPUTS_KEY,
    RESET_KEY,
    RemoteInferenceError,
    RemotePolicyError,
    packb,
    unpackb,
)
from libs.policy_api.types import CameraInput, EpisodeState, PolicySpec
from services.policy_server.server import PolicyServer, UnservablePolicyError


class EchoPolicy:
    """Returns the state repeated over the chunk, so a round trip is checkable exactly."""

    spec = PolicySpec(cameras=(CameraInput("overhead", 24, 32),), chunk_length=4, n_action_steps=2)
    card = CheckpointCard(step=7, task="echo")

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


def test_remote_client_round_trip_card_and_reset(server: PolicyServer) -> None:
    policy = make_policy(f"remote:{server.url}")
    assert policy.spec == EchoPolicy.spec
    assert policy.card == EchoPolicy.card
    chunk = policy.infer(observation(3.5))
    np.testing.assert_array_equal(chunk, np.full((4, 6), 3.5, np.float32))
    assert chunk.flags.writeable
    assert policy.last_server_timing["infer_ms"] >= 0
    assert set(policy.last_normalized_inputs()) == {"observation.state"}  # asked for; small inputs only
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


def test_replies_carry_only_actions_and_timing_unless_normalized_inputs_are_asked_for(server) -> None:
    """openpi-client's ActionChunkBroker slices every array of a reply by chunk step: nothing else goes in."""
    with connect(server.url, compression=None, max_size=None) as raw:
        raw.recv()
        raw.send(packb(observation(1.0)))
        assert set(unpackb(raw.recv())) == {"actions", "server_timing"}
        raw.send(packb({**observation(1.0), NORMALIZED_INPUTS_KEY: True}))
        assert set(unpackb(raw.recv())["normalized_inputs"]) == {"observation.state"}


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


def test_serve_caps_the_forward_passs_threads_before_the_policy_loads(monkeypatch, capsys) -> None:
    """The forward pass leaves the event loop a core: two torch threads on 2 cores served fewer requests."""
    from services.policy_server.serve import main

    for variable in (
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "NPROC",
        "XLA_FLAGS",
        "SO101LAB_THREADS",
    ):
        monkeypatch.setenv(variable, "")  # remembered, so that the test's values do not outlive it
        monkeypatch.delenv(variable)
    main(["--policy", "nonsense:/x", "--port", "0"])
    # every core but the event loop's, less those other work keeps busy (libs.compute_threads), printed
    decided = int(os.environ["OMP_NUM_THREADS"])
    assert 1 <= decided <= max(1, len(os.sched_getaffinity(0)) - 1)
    assert capsys.readouterr().out.startswith(f"threads: {decided} per model (")
    main(["--policy", "nonsense:/x", "--port", "0", "--inference-threads", "3"])
    assert os.environ["OMP_NUM_THREADS"] == os.environ["MKL_NUM_THREADS"] == "3"
    main(["--policy", "nonsense:/x", "--port", "0", "--threads", "2"])  # every command's spelling
    assert os.environ["OMP_NUM_THREADS"] == "2"
    monkeypatch.setenv("OMP_NUM_THREADS", "5")  # the user's own setting wins over the default
    main(["--policy", "nonsense:/x", "--port", "0"])
    assert os.environ["OMP_NUM_THREADS"] == "5"
    assert "threads: 5 per model (set by OMP_NUM_THREADS" in capsys.readouterr().out
    assert main(["--policy", "nonsense:/x", "--inference-threads", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: --inference-threads 0: give at least 1"


@dataclasses.dataclass
class CountingEpisode(EpisodeState):
    calls: int = 0


class BatchCounter:
    """A BatchPolicy whose chunk is ``state + calls so far in this episode + (seed % 1000) / 1000``: every
    number a client gets says which episode produced it. ``gate`` holds a forward pass until the test
    releases it."""

    spec = PolicySpec(cameras=(), chunk_length=3, n_action_steps=3)

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []
        self.gate: threading.Event | None = None
        self.in_pass = threading.Event()
        self._own = self.new_episode(0)

    def reset(self) -> None:
        self._own = self.new_episode(0)

    def infer(self, observation):
        return self.infer_batch([observation], [self._own])[0]

    def new_episode(self, seed: int) -> CountingEpisode:
        return CountingEpisode(seed=seed)

    def infer_batch(self, observations, episodes):
        self.in_pass.set()
        if self.gate is not None:
            assert self.gate.wait(timeout=30)
        self.batch_sizes.append(len(observations))
        chunks = []
        for obs, episode in zip(observations, episodes, strict=True):
            if obs.get("task") == "explode":
                raise RuntimeError("this observation breaks the model")
            chunks.append(
                np.tile(obs["observation.state"] + episode.calls + (episode.seed % 1000) / 1000, (3, 1))
            )
            episode.calls += 1
            episode.normalized_inputs = {"observation.state": obs["observation.state"] / 10}
        return chunks


def state_only(value: float, task: str = "t") -> dict:
    return {"observation.state": np.full(6, value, np.float32), "task": task}


def wait_until_waiting(server: PolicyServer, requests: int) -> None:
    """Until ``requests`` requests wait for the next forward pass (the current one is held by the gate)."""
    for _ in range(3000):
        if server.executor.waiting >= requests:
            return
        threading.Event().wait(0.01)
    raise AssertionError(f"{server.executor.waiting} requests waiting, expected {requests}")


@pytest.fixture()
def counter_server():
    policy = BatchCounter()
    running = PolicyServer(policy, "counter", host="127.0.0.1", port=0).start_in_thread()
    yield running
    running.stop()


def test_concurrent_clients_share_forward_passes_and_each_gets_its_own_rows(counter_server) -> None:
    policy: BatchCounter = counter_server.policy
    policy.gate = threading.Event()
    clients = [connect(counter_server.url, compression=None, max_size=None, legacy=True) for _ in range(8)]
    for client in clients:
        client.recv()

    def ask(index: int) -> np.ndarray:
        clients[index].send(packb(state_only(100.0 * index)))
        return unpackb(clients[index].recv())["actions"]

    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(ask, 0)
        assert policy.in_pass.wait(timeout=30)  # client 0's pass is running: the other 7 queue behind it
        rest = [pool.submit(ask, index) for index in range(1, 8)]
        wait_until_waiting(counter_server, 7)
        policy.gate.set()
        replies = [first.result(timeout=30)] + [future.result(timeout=30) for future in rest]
    assert policy.batch_sizes == [1, 7]
    for index, actions in enumerate(replies):
        assert actions.shape == (3, 6)
        assert np.floor(actions[0, 0]) == 100.0 * index  # its own observation, first call of its episode
    for client in clients:
        client.close()


def test_each_connection_has_its_own_episode_and_reset(counter_server) -> None:
    with connect(counter_server.url) as a, connect(counter_server.url) as b:
        a.recv(), b.recv()
        for _ in range(3):
            a.send(packb(state_only(0.0)))
            a.recv()
        b.send(packb(state_only(0.0)))
        assert np.floor(unpackb(b.recv())["actions"][0, 0]) == 0  # b's episode has not seen a's calls
        a.send(packb({RESET_KEY: True, "seed": 500}))
        assert unpackb(a.recv()) == {"reset": True}
        a.send(packb(state_only(0.0)))
        assert unpackb(a.recv())["actions"][0, 0] == pytest.approx(0.5)  # fresh episode, seeded as asked
        b.send(packb(state_only(0.0)))
        assert np.floor(unpackb(b.recv())["actions"][0, 0]) == 1  # b's episode went on, unaffected


def test_a_request_that_breaks_the_batch_fails_alone(counter_server) -> None:
    policy: BatchCounter = counter_server.policy
    policy.gate = threading.Event()
    good, bad, blocker = (connect(counter_server.url, legacy=True) for _ in range(3))
    for client in (good, bad, blocker):
        client.recv()
    blocker.send(packb(state_only(0.0)))
    assert policy.in_pass.wait(timeout=30)
    bad.send(packb(state_only(1.0, task="explode")))
    good.send(packb(state_only(2.0)))
    wait_until_waiting(counter_server, 2)
    policy.gate.set()
    assert bad.recv() == "inference failed: RuntimeError: this observation breaks the model"
    assert np.floor(unpackb(good.recv())["actions"][0, 0]) == 2.0
    blocker.recv()
    for client in (good, bad, blocker):
        client.close()


def test_health_checks_are_answered_while_a_forward_pass_runs(counter_server) -> None:
    policy: BatchCounter = counter_server.policy
    policy.gate = threading.Event()
    with connect(counter_server.url) as client:
        client.recv()
        client.send(packb(state_only(0.0)))
        assert policy.in_pass.wait(timeout=30)  # inference is running, held by the gate
        url = counter_server.url.replace("ws://", "http://") + "/healthz"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.read() == b"OK\n"
        policy.gate.set()
        assert unpackb(client.recv())["actions"].shape == (3, 6)


def test_a_policy_that_cannot_batch_gets_one_instance_per_connection() -> None:
    built: list[EchoPolicy] = []

    def new_policy() -> EchoPolicy:
        built.append(EchoPolicy())
        return built[-1]

    server = PolicyServer(EchoPolicy(), "echo", host="127.0.0.1", port=0, new_client_policy=new_policy)
    server.start_in_thread()
    try:
        first, second = make_policy(f"remote:{server.url}"), make_policy(f"remote:{server.url}")
        first.reset()
        first.reset()
        first.infer(observation(1.0))
        second.infer(observation(2.0))
        assert len(built) == 2 and [policy.resets for policy in built] == [2, 1]
        first.close(), second.close()
    finally:
        server.stop()
