"""The sweep's Ray pool: one actor per worker, each holding an ``EpisodeWorker``; joining or starting Ray.

Each worker holds a second episode in its queue so it never idles through the round trip to the driver;
every finished episode goes to ``record_done`` (the results store) before the next is handed out. The
actors live until ``stop_workers``, so an ``--until-decided`` sweep keeps its workers, and the policies
they hold, across rounds. Ray is imported only when a pool starts: importing this module does not.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlparse

from libs.compute_threads import (
    THREAD_VARIABLES,
    XLA_POOL_VARIABLE,
    apply_threads,
    cores_given,
    inherited_threads,
)
from libs.evaluation.plan.tasks import EnvSettings, EpisodeTask, SweepError
from libs.evaluation.play.episode_worker import EpisodeWorker, lockstep_batches
from libs.evaluation.play.ray_auth import ClusterAuthError, join_with_token_auth
from libs.evaluation.results.episode_record import EpisodeRecord
from libs.policy_api.contracts import ContractViolation
from libs.policy_api.registry import PolicyLoadError

#: Ray's object store is only used for small records; a cap keeps a laptop's /dev/shm free.
OBJECT_STORE_BYTES = 200 * 1024 * 1024
EPISODES_QUEUED_PER_WORKER = 2


def start_workers(env: EnvSettings, workers: int | None, episodes: int, keep_policies: int = 1) -> list[Any]:
    """One Ray actor per worker: ``workers`` or every CPU of the cluster, no more than ``episodes``."""
    import ray

    available = int(ray.cluster_resources().get("CPU", 1))
    count = max(1, min(workers or available, available, episodes))
    worker_class = _episode_worker_class()
    return [worker_class.remote(env, keep_policies) for _ in range(count)]


def stop_workers(actors: Sequence[Any]) -> None:
    """Free the workers' CPUs now: a caller may keep Ray up for the next sweep."""
    import ray

    for actor in actors:
        ray.kill(actor)


def run_on_ray(
    tasks: Sequence[EpisodeTask],
    actors: Sequence[Any],
    record_done: Callable[[EpisodeRecord], None],
    episode_timeout_s: float,
    lockstep_envs: int = 1,
) -> int:
    """Runs ``tasks`` on ``actors`` (left running), ``lockstep_envs`` episodes of one checkpoint per call;
    returns the policy loads of the workers so far."""
    import ray

    # Each worker holds a second batch in its queue, so it starts the next one the moment it finishes
    # instead of idling through the round trip to this driver (results, store writes, next submit).
    idle = [actor for actor in actors for _ in range(EPISODES_QUEUED_PER_WORKER)]
    pending: dict[Any, Any] = {}
    queue = list(reversed(lockstep_batches(tasks, lockstep_envs)))
    while queue or pending:
        while idle and queue:
            actor = idle.pop()
            pending[actor.run_batch.remote(queue.pop())] = actor
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=episode_timeout_s * max(1, lockstep_envs))
        if not ready:
            raise SweepError(
                f"no episode finished within {episode_timeout_s:.0f} s on {len(actors)} Ray workers: "
                "a worker hangs (check the policy) or episodes are slower; raise --episode-timeout"
            )
        for ref in ready:
            actor = pending.pop(ref)
            for record in _get(ref):
                record_done(EpisodeRecord.from_dict(record))
            idle.append(actor)
    return sum(_get(actor.policy_loads.remote()) for actor in actors)


def _get(ref: Any, timeout_s: float = 120.0) -> Any:
    """ray.get that surfaces the worker's own one-line error instead of a remote traceback."""
    import ray
    from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

    try:
        return ray.get(ref, timeout=timeout_s)
    except RayTaskError as error:
        cause = getattr(error, "cause", None)
        if isinstance(cause, ContractViolation | PolicyLoadError | SweepError | ValueError):
            raise cause from None
        raise
    except RayActorError as error:
        # The worker died more often than its restarts allow (each death is retried first).
        raise SweepError(
            "a Ray worker process died repeatedly (out of memory, or a crash in the renderer or the "
            "policy): the episodes stored so far are kept; rerun the same command to resume, with fewer "
            f"--workers if memory is short ({type(error).__name__})"
        ) from error
    except GetTimeoutError as error:
        raise SweepError(
            f"a Ray worker did not answer within {timeout_s:.0f} s: check the cluster's health"
        ) from error


_WORKER_CLASS: Any = None


def _episode_worker_class() -> Any:
    """The Ray actor class, built lazily so importing this module does not import Ray."""
    global _WORKER_CLASS
    if _WORKER_CLASS is None:
        import ray

        # A worker process that dies (OOM, segfault in a renderer) is restarted and its episode retried.
        @ray.remote(num_cpus=1, max_restarts=2, max_task_retries=2)
        class RayEpisodeWorker:
            def __init__(self, env_settings: EnvSettings, keep_policies: int = 1) -> None:
                apply_threads(inherited_threads())  # the driver's decision (services/eval/sweep.py)
                self.worker = EpisodeWorker(env_settings, keep_policies)

            def run_batch(self, tasks: list[EpisodeTask]) -> list[dict[str, Any]]:
                return [record.to_dict() for record in self.worker.run_batch(tasks)]

            def policy_loads(self) -> int:
                return self.worker.policy_loads

        _WORKER_CLASS = RayEpisodeWorker
    return _WORKER_CLASS


def connect_ray(address: str | None, workers: int | None = None) -> bool:
    """Join ``address`` or start Ray on local cores. Returns True when this call started Ray."""
    import ray

    if address and address not in ("local", "auto"):
        _check_reachable(address)
        try:
            join_with_token_auth(address)
        except ClusterAuthError as error:
            raise SweepError(str(error)) from None
    if ray.is_initialized():
        return False
    try:
        if address and address != "local":
            ray.init(
                address=address,
                include_dashboard=False,
                log_to_driver=False,
                logging_level="ERROR",
                runtime_env={"py_modules": _code_packages(), "env_vars": _thread_variables()},
            )
        else:
            _start_local_ray(workers)
    except Exception as error:  # Ray raises a bare Exception when its node does not come up in time
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if not address or address == "local":
            raise SweepError(
                f"Ray could not start on this machine's cores ({first_line}): on a busy machine its "
                "processes can miss their start-up deadline; rerun, or pass --serial to run without Ray"
            ) from None
        raise SweepError(
            f"cannot join the Ray cluster at {address or 'local'} ({first_line}): check that it runs the "
            "same Ray version (`ray status` on the head), or drop --ray-address to use local cores"
        ) from None
    return True


#: Local start-up attempts: Ray waits a fixed 30 s for its raylet, which a machine busy training can miss.
LOCAL_START_ATTEMPTS = 2


def _start_local_ray(workers: int | None) -> None:
    """``ray.init`` on this machine's cores, tried again once (after stopping what the failed attempt
    started) when its node misses Ray's start-up deadline."""
    import ray

    for attempt in range(1, LOCAL_START_ATTEMPTS + 1):
        try:
            ray.init(
                num_cpus=workers or cores_given(),
                object_store_memory=OBJECT_STORE_BYTES,
                include_dashboard=False,
                log_to_driver=False,
                logging_level="ERROR",
            )
            return
        except Exception:
            ray.shutdown()  # the processes the failed attempt started
            if attempt == LOCAL_START_ATTEMPTS:
                raise


def _thread_variables() -> dict[str, str]:
    """The threads per worker the driver decided, for a cluster's workers (local ones inherit them)."""
    names = (*THREAD_VARIABLES, XLA_POOL_VARIABLE)
    return {name: os.environ[name] for name in names if name in os.environ}


def _code_packages() -> list[Any]:
    """This repo's packages, shipped to a remote cluster's workers (its nodes have the third-party stack
    but not this checkout)."""
    import importlib

    packages = []
    for name in ("libs", "scenes", "backends"):
        try:
            packages.append(importlib.import_module(name))
        except ImportError:
            continue
    return packages


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    host, port = parsed.hostname, parsed.port or (10001 if parsed.scheme == "ray" else 6379)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return
    except (OSError, ValueError) as error:
        raise SweepError(
            f"cannot reach a Ray cluster at {address} ({error.__class__.__name__}: {error}): start it with "
            "`ray start --head` there, check host and port, or drop --ray-address to use local cores"
        ) from None
