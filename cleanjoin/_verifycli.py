"""``cleanjoin verify-output``: check a sealed output table from the command line."""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["register_cli"]


def _cli_verify_output(args: argparse.Namespace) -> int:
    from cleanjoin.errors import CleanJoinError
    from cleanjoin.policy import CollaborationPolicy
    from cleanjoin.session import local_spark
    from cleanjoin.verify import verify_output

    try:
        policy: Any = (
            CollaborationPolicy.load(args.policy) if args.policy is not None
            else args.policy_fingerprint
        )
        spark = local_spark(connect=bool(args.connect), app_name="cleanjoin-verify-output")
        result = verify_output(args.table, policy=policy, audit=args.audit, spark=spark)
    except CleanJoinError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if result.ok:
        print(result)
        return 0
    print(result, file=sys.stderr)
    return 1


def register_cli(subparsers: Any) -> None:
    """Add ``cleanjoin verify-output TABLE (--policy FILE | --policy-fingerprint HEX)``."""
    parser = subparsers.add_parser(
        "verify-output",
        help="check that an output table was written by cleanjoin under a policy, unchanged",
    )
    parser.add_argument("table", help="the output table: a Delta path or a table name")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--policy", default=None, help="the approved policy file (YAML or JSON)")
    which.add_argument("--policy-fingerprint", default=None,
                       help="the approved policy's fingerprint (64 hex digits)")
    parser.add_argument("--audit", default=None,
                        help="the audit log's Delta table, to check it recorded the write")
    parser.add_argument("--connect", action="store_true", help="use a local Spark Connect server")
    parser.set_defaults(func=_cli_verify_output)
