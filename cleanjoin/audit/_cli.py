"""``cleanjoin audit export`` and ``cleanjoin audit verify``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cleanjoin._auditverify import verify_file
from cleanjoin.audit._log import AuditLog

__all__ = ["register_cli"]


def _cli_export(args: argparse.Namespace) -> int:
    from cleanjoin.session import local_spark

    spark = local_spark(connect=bool(args.connect), app_name="cleanjoin-audit-export")
    count = AuditLog(args.path).export(args.out, spark=spark)
    print(f"exported {count} audit entries to {args.out}")
    return 0


def _cli_verify(args: argparse.Namespace) -> int:
    head = args.head
    if head is not None and (len(head) != 64 or not set(head) <= set("0123456789abcdef")):
        print("error: --head must be 64 lowercase hex digits (an entry_hash)", file=sys.stderr)
        return 2
    try:
        result = verify_file(args.file, head=head)
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    if result.ok:
        print(f"OK: {result.entries} entries verified; head {result.head}")
        return 0
    print(
        f"FAILED at seq {result.first_bad_seq}: {result.reason} "
        f"({result.first_bad_seq} entries before it verified)",
        file=sys.stderr,
    )
    return 1


def register_cli(subparsers: Any) -> None:
    """Add ``cleanjoin audit export`` and ``cleanjoin audit verify``."""
    audit = subparsers.add_parser("audit", help="export or verify a hash-chained audit log")
    verbs = audit.add_subparsers(dest="audit_command", required=True)
    export = verbs.add_parser("export", help="write an audit log (Delta table) as JSONL")
    export.add_argument("path", help="the audit log's Delta table: a path, or a name in the session's catalog")
    export.add_argument("--out", required=True, help="output .jsonl file")
    export.add_argument("--connect", action="store_true", help="use a local Spark Connect server")
    export.set_defaults(func=_cli_export)
    verify = verbs.add_parser(
        "verify", help="verify a JSONL export offline (Python standard library only)"
    )
    verify.add_argument("file", help="the .jsonl export")
    verify.add_argument("--head", default=None, help="checkpoint entry_hash that must be present")
    verify.set_defaults(func=_cli_verify)

