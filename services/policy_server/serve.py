"""Serve a policy over openpi's websocket protocol.

    ./pants run services/policy_server:serve-jax_openpi -- --policy jax_openpi:RUN/checkpoints/002000
    ./pants run services/policy_server:serve-torch_lerobot -- --policy torch_lerobot:RUN/checkpoints/last
    ./pants run services/policy_server:serve -- --policy remote:ws://other-host:8000   (a relay, stack-free)

Clients: openpi-client's ``WebsocketClientPolicy("host", 8000)`` or ``remote:ws://host:8000`` in any resolve.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from libs.compute_threads import decide_and_apply
from libs.errors import LabError
from libs.evaluation.play.input_check import check_served_inputs
from libs.policy_api.registry import make_policy
from services.policy_server.server import DEFAULT_MAX_BATCH, EVENT_LOOP_RESERVE, PolicyServer


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Serve a policy over openpi's websocket protocol.")
    parser.add_argument(
        "--policy", required=True, help="jax_openpi:DIR | torch_lerobot:DIR | remote:ws://HOST:PORT"
    )
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--max-batch",
        type=int,
        default=DEFAULT_MAX_BATCH,
        help="most requests in one forward pass (1 serves one request at a time)",
    )
    parser.add_argument(
        "--inference-threads",
        "--threads",
        dest="inference_threads",
        type=int,
        default=None,
        help="CPU threads of the forward pass (default: OMP_NUM_THREADS if set, else the cores given less "
        "those busy with other work and one the event loop keeps; printed at start)",
    )
    parser.add_argument(
        "--allow-input-drift",
        action="store_true",
        help="serve even when the env's inputs differ from the checkpoint's training statistics "
        "(libs/evaluation/play/input_check.py, checked in the card's training scene before serving)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.inference_threads is not None and args.inference_threads < 1:
        print(f"error: --inference-threads {args.inference_threads}: give at least 1", file=sys.stderr)
        return 2
    decide_and_apply(1, args.inference_threads, **EVENT_LOOP_RESERVE)  # before the policy's stack loads
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        policy = make_policy(args.policy)
        check_served_inputs(policy, args.policy, allow=args.allow_input_drift)
        server = PolicyServer(
            policy,
            args.policy,
            args.host,
            args.port,
            # a policy that cannot batch gets one instance per client, so clients never share an episode
            new_client_policy=lambda: make_policy(args.policy),
            max_batch=args.max_batch,
        )
    except LabError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"serving {args.policy} on ws://{args.host}:{args.port} (health: http://{args.host}:{args.port}/healthz)"
    )
    try:
        server.serve_forever()
    except OSError as error:
        print(
            f"error: cannot listen on {args.host}:{args.port} ({error}): pick another --port", file=sys.stderr
        )
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
