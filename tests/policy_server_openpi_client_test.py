"""The policy server speaks openpi's protocol: the real openpi-client (WebsocketClientPolicy,
ActionChunkBroker) and our stack-free ``remote:`` client both drive a served jax_openpi checkpoint.

The long runs use openpi-client from its own resolve (``tests/openpi_client:broker_driver``, numpy<2 and no
so101lab code), as a separate process, which is how a robot process meets the server."""

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from openpi_client.action_chunk_broker import ActionChunkBroker
from openpi_client.websocket_client_policy import WebsocketClientPolicy

from backends.jax_openpi import train as train_lib
from backends.jax_openpi.compute_norm_stats import main as compute_norm_stats_main
from backends.jax_openpi.config import get_config
from backends.jax_openpi.fixtures import write_tiny_dataset
from libs.policy_api.registry import make_policy
from libs.policy_api.remote import RemoteInferenceError
from services.eval.fixtures import own_environment
from services.policy_server.server import PolicyServer

BROKER_DRIVER = Path("tests.openpi_client/broker_driver.pex")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    dataset = write_tiny_dataset(tmp_path_factory.mktemp("data") / "tiny", episodes=2, length=10)
    out = tmp_path_factory.mktemp("run")
    assert (
        compute_norm_stats_main(["--config", "so101_test", "--dataset", str(dataset), "--out", str(out)]) == 0
    )
    train_lib.train(get_config("so101_test"), dataset, out, steps=1, progress=False)
    uri = f"jax_openpi:{out / 'checkpoints' / '000001'}"
    server = PolicyServer(make_policy(uri), uri, host="127.0.0.1", port=0).start_in_thread()
    yield server
    server.stop()


def observation(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "observation.state": np.array([3, -20, 15, 40, 0, 70], np.float32),
        "observation.images.overhead": rng.integers(0, 256, (24, 32, 3), dtype=np.uint8),
        "observation.images.wrist": rng.integers(0, 256, (24, 32, 3), dtype=np.uint8),
        "task": "put the block in the bowl",
    }


def test_openpi_client_gets_metadata_and_action_chunks(served: PolicyServer) -> None:
    client = WebsocketClientPolicy(host="127.0.0.1", port=served.port)
    metadata = client.get_server_metadata()
    assert metadata["spec"]["chunk_length"] == 50 and metadata["policy"].startswith("jax_openpi:")
    reply = client.infer(observation())
    assert reply["actions"].shape == (50, 6) and reply["actions"].dtype == np.float32
    assert reply["server_timing"]["infer_ms"] > 0
    second = client.infer(observation())
    assert "prev_total_ms" in second["server_timing"]


def test_action_chunk_broker_steps_through_a_chunk(served: PolicyServer) -> None:
    client = WebsocketClientPolicy(host="127.0.0.1", port=served.port)
    broker = ActionChunkBroker(client, action_horizon=5)
    steps = [broker.infer(observation())["actions"] for _ in range(6)]
    assert all(step.shape == (6,) for step in steps)
    assert not np.array_equal(steps[0], steps[1])  # consecutive steps of one chunk
    broker.reset()


def test_openpi_client_sees_the_error_and_the_server_keeps_serving(served: PolicyServer) -> None:
    broken = WebsocketClientPolicy(host="127.0.0.1", port=served.port)
    bad = observation()
    del bad["observation.images.wrist"]
    with pytest.raises(RuntimeError, match="lacks"):
        broken.infer(bad)
    assert broken.infer(observation())["actions"].shape == (50, 6)  # same connection still served
    other = WebsocketClientPolicy(host="127.0.0.1", port=served.port)
    assert other.infer(observation(1))["actions"].shape == (50, 6)


def test_remote_client_matches_in_process_inference(served: PolicyServer) -> None:
    remote = make_policy(f"remote:{served.url}")
    assert remote.spec == served.policy.spec
    assert remote.card is not None and remote.card.step == 1
    chunk = remote.infer(observation())
    assert chunk.shape == (50, 6) and np.isfinite(chunk).all()
    assert set(remote.last_normalized_inputs()) == {"observation.state"}
    with pytest.raises(RemoteInferenceError, match="lacks"):
        remote.infer({"observation.state": np.zeros(6, np.float32)})
    remote.close()


def run_broker_driver(url: str, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, str(BROKER_DRIVER), "--url", url, *args],
        capture_output=True,
        text=True,
        env=own_environment(),
        timeout=600,
    )
    assert done.stdout.strip(), f"broker driver printed nothing: {done.stderr[-2000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_pypi_openpi_client_broker_1000_calls_from_its_own_environment(served: PolicyServer) -> None:
    result = run_broker_driver(served.url, "--calls", "1000", "--horizon", "10", "--reset-every", "100")
    assert result["numpy"].startswith("1.") and result["openpi_client"] == "0.1.2"  # its own environment
    assert result["errors"] == {}
    assert result["good"] == result["calls"] == 1000  # each call the next row of the chunk, shape (6,)
    assert result["chunks_fetched"] == 100
    assert result["reply_keys"] == ["actions", "server_timing"]  # nothing else for the broker to slice


def test_several_openpi_clients_at_once_each_get_their_own_chunks(served: PolicyServer) -> None:
    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(
                lambda seed: run_broker_driver(
                    served.url, "--calls", "200", "--horizon", "5", "--seed", str(seed)
                ),
                range(4),
            )
        )
    assert [result["good"] for result in results] == [200] * 4
    assert all(result["errors"] == {} for result in results)


def test_a_batched_chunk_equals_the_chunk_the_episode_gets_alone(served: PolicyServer) -> None:
    policy = served.policy
    observations = [observation(seed) for seed in range(3)]
    alone = [
        policy.infer_batch([obs], [policy.new_episode(seed)])[0] for seed, obs in enumerate(observations)
    ]
    together = policy.infer_batch(observations, [policy.new_episode(seed) for seed in range(3)])
    for single, batched in zip(alone, together, strict=True):
        np.testing.assert_allclose(batched, single, atol=1e-4)
