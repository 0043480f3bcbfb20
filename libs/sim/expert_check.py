"""Runs the scripted expert over many seeds, render-free, and prints its outcome table.

    ./pants run libs/sim:expert_check -- --episodes 200 --action-space joint

The acceptance bar for the expert is ≥95% success on 200 seeds in each action space; the unit tests
check a handful of seeds, this script is the full (minutes-long) check.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

from rich.console import Console
from rich.progress import track
from rich.table import Table

from libs.sim.env import SimInputError, SO101PickPlaceEnv
from libs.sim.outcome import EpisodeFigures, Outcome
from libs.sim.play.episode import play_episode
from libs.sim.scripted_policy import ScriptedPolicy


def run_expert(action_space: str, seeds: range, progress: bool = True) -> dict[int, EpisodeFigures]:
    env = SO101PickPlaceEnv(action_space=action_space, render=False)
    policy = ScriptedPolicy(action_space=action_space)
    results: dict[int, EpisodeFigures] = {}
    iterator = track(seeds, description=f"expert ({action_space})") if progress else seeds
    for seed in iterator:
        results[seed] = play_episode(policy, env, seed).figures
    env.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--action-space", choices=["joint", "ee", "both"], default="both")
    args = parser.parse_args(argv)
    console = Console(width=150)
    spaces = ["joint", "ee"] if args.action_space == "both" else [args.action_space]
    table = Table(title=f"scripted expert, seeds {args.first_seed}..{args.first_seed + args.episodes - 1}")
    for column in ("action space", "success", "outcomes", "failed seeds", "IK fails/ep", "IK err mm", "s/ep"):
        table.add_column(column)
    try:
        for space in spaces:
            started = time.perf_counter()
            results = run_expert(space, range(args.first_seed, args.first_seed + args.episodes))
            seconds = (time.perf_counter() - started) / max(len(results), 1)
            outcomes = Counter(str(f.outcome) for f in results.values())
            failed = [seed for seed, f in results.items() if f.outcome != Outcome.SUCCESS]
            successes = outcomes.get(str(Outcome.SUCCESS), 0)
            table.add_row(
                space,
                f"{successes}/{len(results)} ({100 * successes / len(results):.1f}%)",
                ", ".join(f"{name} {count}" for name, count in outcomes.most_common()),
                " ".join(map(str, failed[:20])) + (" ..." if len(failed) > 20 else ""),
                f"{sum(f.ik_failures for f in results.values()) / len(results):.2f}",
                f"{sum(f.ik_error_mm_mean for f in results.values()) / len(results):.2f}",
                f"{seconds:.2f}",
            )
    except SimInputError as error:
        console.print(f"[red]error:[/red] {error}")
        return 2
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
