"""Compute the norm stats (mean, std, q01, q99) a training run needs, into ``RUN/assets/norm_stats.json``.

./pants run backends/jax_openpi:compute_norm_stats -- --config so101_cpu --dataset DATA --out RUN
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from backends.jax_openpi.checkpoints import ASSETS_DIR
from backends.jax_openpi.config import CONFIGS, get_config
from backends.jax_openpi.data import compute_norm_stats, load_training_arrays
from backends.jax_openpi.norm_stats import save_norm_stats
from backends.jax_openpi.train import KNOWN_ERRORS


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Compute norm stats (mean, std, q01, q99) for training.")
    parser.add_argument("--config", required=True, help=" | ".join(CONFIGS))
    parser.add_argument("--dataset", required=True, type=Path, help="LeRobot v3 dataset folder")
    parser.add_argument("--out", required=True, type=Path, help="run folder; writes assets/norm_stats.json")
    args = parser.parse_args(argv)
    try:
        config = get_config(args.config)
        stats = compute_norm_stats(load_training_arrays(args.dataset, config), config)
    except KNOWN_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    path = save_norm_stats(args.out / ASSETS_DIR, stats)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
