"""``./pants run services/training:train-runs-torch_lerobot -- --runs RUNS.json [--address HEAD:6379]``

Trains a list of training runs (a runs file: each run's name, trainer, train-command flags, run folder, the
last checkpoint that marks it done, threads and whether it wants a GPU) as Ray tasks: on this machine's
cores by default, or on a Ray cluster by ``--address`` (the sweep's token-auth cluster: see
docs/clusters.md). A finished run is skipped; rerunning the same command after a kill trains only the
unfinished runs, each from its last complete checkpoint. JAX runs use ``train-runs-jax_openpi`` (the two
stacks live in different resolves).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from libs.errors import one_line_errors
from services.training.ray_training import train_runs
from services.training.runs import TrainingRunError, read_runs_file


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train-runs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, required=True, help='runs file (JSON: {"runs": [...]})')
    parser.add_argument(
        "--address",
        "--ray-address",
        dest="address",
        default=None,
        help="Ray cluster HEAD:PORT (default: Ray on this machine's cores)",
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="runs trained at once (default: as many as the CPUs hold)"
    )
    return parser


@one_line_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.workers is not None and args.workers < 1:
        raise TrainingRunError(f"--workers {args.workers}: give at least 1")
    runs = read_runs_file(args.runs)
    try:
        # joining the cluster fails as the sweep's does: one line (SweepError, a LabError)
        trained = train_runs(runs, args.address, args.workers)
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume; finished runs are skipped", file=sys.stderr)
        return 130
    print(f"trained {len(trained)} run(s); {len(runs) - len(trained)} were already finished", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
