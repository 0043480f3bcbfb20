"""Training runs as Ray tasks, on this machine's cores or on the sweep's token-auth cluster.

Each unfinished run (``runs.is_finished``) is one task reserving the run's ``threads`` CPUs, and a GPU when
the run asks for one and a node has one; Ray places the tasks on whichever nodes have those free. Joining
the cluster is the sweep's ``connect_ray`` (reachability, token authentication, this repo's packages shipped
to the workers), so an address that cannot be used is the same one line. Each run is stamped finished and
its record written by this driver the moment its task returns, so a rerun after a kill, a dead node or a
failed run trains only what is left (each unfinished run continuing from its last complete checkpoint).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from libs.evaluation.play.ray_pool import connect_ray
from services.training import train_task
from services.training.runs import (
    TRAINERS,
    TrainingRun,
    TrainingRunError,
    begin,
    check_trainers_installed,
    finish,
    is_finished,
    task_resources,
)

LOG_SUFFIX = ".train.log"


def log_path(run: TrainingRun) -> Path:
    """The run's output, beside its folder (on the shared filesystem, where every node writes)."""
    return run.output.with_name(f"{run.output.name}{LOG_SUFFIX}")


def train_runs(
    runs: Sequence[TrainingRun],
    address: str | None = None,
    workers: int | None = None,
    say: Callable[[str], None] = print,
) -> list[str]:
    """Trains every unfinished run of ``runs`` on Ray (``address``: a cluster; None or ``local``: this
    machine's cores, ``workers`` of them); returns the names of the runs trained now. Raises
    ``TrainingRunError`` naming each run that failed, after the others finished."""
    todo = [run for run in runs if not is_finished(run)]
    for run in runs:
        if run not in todo:
            say(f"{run.name}: finished ({run.done_marker}), skipping")
    if not todo:
        return []
    check_trainers_installed(todo)
    import ray

    # Ray on this machine gets every core (a run's threads must fit); --workers caps the runs at once.
    started_ray = connect_ray(address)
    try:
        _check_fits(todo)
        failures = _run_tasks(todo, workers, say)
    finally:
        if started_ray:
            ray.shutdown()
    if failures:
        raise TrainingRunError(
            f"{len(failures)} of {len(todo)} training runs failed ({'; '.join(failures)}): fix the cause, "
            "then rerun the same command (finished runs are skipped, the others continue)"
        )
    return [run.name for run in todo]


def _check_fits(todo: Sequence[TrainingRun]) -> None:
    """Every run's threads fit one node (Ray would otherwise hold the task forever as infeasible)."""
    import ray

    largest = max((node["Resources"].get("CPU", 0) for node in ray.nodes() if node["Alive"]), default=0)
    for run in todo:
        if run.threads > largest:
            raise TrainingRunError(
                f"run {run.name} asks for {run.threads} threads but the largest node has {largest:.0f} CPUs: "
                "give it fewer threads, or add a larger node"
            )


def _run_tasks(todo: list[TrainingRun], workers: int | None, say: Callable[[str], None]) -> list[str]:
    """Submits the runs (at most ``workers`` at a time), stamping each as it finishes; returns the failures
    as ``name: reason``."""
    import ray

    gpus = ray.cluster_resources().get("GPU", 0)
    task = _remote_task()
    queue = list(reversed(todo))
    pending: dict[Any, TrainingRun] = {}
    failures: list[str] = []
    while queue or pending:
        while queue and (workers is None or len(pending) < workers):
            run = queue.pop()
            pending[_submit(task, run, gpus, say)] = run
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            run = pending.pop(ref)
            failure = _collect(ref, run)
            if failure is None:
                say(f"{run.name}: done ({run.done_marker})")
            else:
                failures.append(f"{run.name}: {failure}")
                say(f"{run.name}: failed: {failure}")
    return failures


def _submit(task: Any, run: TrainingRun, gpus: float, say: Callable[[str], None]) -> Any:
    resources = task_resources(run, gpus)
    if run.gpu and not resources["num_gpus"]:
        say(f"{run.name}: asks for a GPU but no node of this cluster has one: training it on CPU")
    said = begin(run)
    where = f"{run.threads} CPU" + (" + 1 GPU" if resources["num_gpus"] else "")
    say(f"{run.name}: submitted ({where})" + (f"; {said}" if said else ""))
    trainer = TRAINERS[run.trainer]
    return task.options(**resources, name=run.name).remote(
        trainer.module, trainer.resuming(run.argv), str(log_path(run)), run.threads
    )


def _collect(ref: Any, run: TrainingRun) -> str | None:
    """Stamps ``run`` finished when its task trained it; else why it did not (one line)."""
    import ray
    from ray.exceptions import RayError, RayTaskError

    try:
        result = ray.get(ref)
    except RayTaskError as error:
        cause = getattr(error, "cause", None) or error
        last_line = (str(cause).strip().splitlines() or [""])[-1]
        return f"the trainer raised {type(cause).__name__}: {last_line} (log: {log_path(run)})"
    except RayError as error:  # the worker or its node died more often than the retry allows
        return f"its Ray worker was lost ({type(error).__name__}); log: {log_path(run)}"
    if result["exit_code"] != 0:
        return f"{result['error']} (log: {log_path(run)})"
    try:
        finish(run, result)
    except TrainingRunError as error:
        return str(error)
    return None


_TASK: Any = None


def _remote_task() -> Any:
    """The Ray task, made once; its module is pickled by value, for nodes without ``services``."""
    global _TASK
    if _TASK is None:
        import ray
        from ray import cloudpickle

        cloudpickle.register_pickle_by_value(sys.modules[train_task.__name__])
        # A fresh worker process per run (max_calls=1); a worker or node lost mid-run is retried once, the
        # trainer continuing from the run's last complete checkpoint.
        _TASK = ray.remote(max_calls=1, max_retries=1)(train_task.train_in_this_process)
    return _TASK
