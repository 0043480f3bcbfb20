"""``./pants run services/eval:plan -- --rates 0.8 0.6 --power 0.9``

Prints the episodes per checkpoint needed to tell two success rates apart at a chosen power, for the
fixed-n design (exact McNemar test afterwards) and the sequential one (``sweep --until-decided``), with the
``--max-episodes`` budget to pass the sweep. Rates are given (``--rates``), estimated from a pilot sweep's
results folder (``--pilot``), or one checkpoint is planned against a target (``--rate --target-rate``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from libs.errors import LabError
from libs.evaluation.results.store import STORE_FILE_NAME, ResultsStore
from libs.evaluation.stats.sample_sizes import (
    DEFAULT_SIMULATIONS,
    PairRates,
    PlanError,
    SimulationSettings,
    plan_paired,
    plan_target,
    rates_from_pilot,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plan", description="Episodes needed to separate two success rates: fixed-n vs sequential."
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--rates", type=float, nargs=2, metavar=("FIRST", "SECOND"), help="e.g. 0.8 0.6")
    source.add_argument(
        "--pilot", type=Path, help="a sweep's --out folder: rates estimated from its episodes"
    )
    source.add_argument("--rate", type=float, help="one checkpoint's expected rate (with --target-rate)")
    parser.add_argument("--target-rate", type=float, default=None, help="the rate --rate is tested against")
    parser.add_argument("--first", default=None, help="with --pilot: the first checkpoint id")
    parser.add_argument("--second", default=None, help="with --pilot: the second checkpoint id")
    parser.add_argument("--power", type=float, default=0.9, help="chance of a decision if the rates hold")
    parser.add_argument("--alpha", type=float, default=0.05, help="error rate when there is no difference")
    parser.add_argument("--simulations", type=int, default=DEFAULT_SIMULATIONS, help="per sequential budget")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    settings = SimulationSettings(arguments.alpha, arguments.simulations)
    try:
        if arguments.rate is not None:
            if arguments.target_rate is None:
                raise PlanError("--rate needs --target-rate: the rate it is tested against, e.g. 0.8")
            plan = plan_target(arguments.rate, arguments.target_rate, arguments.power, settings)
            heading = plan.description
        else:
            if arguments.pilot is not None:
                store_path = arguments.pilot / STORE_FILE_NAME
                if not store_path.is_file():
                    raise PlanError(
                        f"{arguments.pilot} holds no {STORE_FILE_NAME}: pass a sweep's --out folder"
                    )
                with ResultsStore(store_path) as store:
                    records = store.records()
                first, second, rates, shared = rates_from_pilot(records, arguments.first, arguments.second)
                source = f"estimated from {shared} shared seeds of {first} and {second} in {arguments.pilot}"
            else:
                rates = PairRates.independent(*arguments.rates)
                first, second, source = "first", "second", "given"
            plan = plan_paired(rates, arguments.power, settings)
            heading = f"{plan.description}; rates {source}"
    except LabError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if arguments.json:
        print(json.dumps(plan.to_dict(), indent=2))
        return 0
    print(f"Plan for {heading}")
    print(f"alpha {plan.alpha:g}, power {plan.power:g}; episodes per checkpoint:\n")
    print(plan.table())
    print(
        f"\nIf the rates hold, the sequential design spends {plan.saving:.0%} fewer episodes on average; "
        "run it with: sweep ... --until-decided "
        f"--alpha {plan.alpha:g} --max-episodes {plan.sequential_budget}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
