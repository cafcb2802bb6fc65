"""The ``cleanjoin contract check`` command (registered by :mod:`cleanjoin.cli`).

It validates a contract file and prints its fingerprint; no Spark session is needed.
"""

from __future__ import annotations

from typing import Any

from cleanjoin.contract._model import OutputContract
from cleanjoin.errors import InvalidArgumentError


def _cli_check(args: Any) -> int:
    import sys

    try:
        contract = OutputContract.load(args.file)
    except InvalidArgumentError as exc:
        print(f"invalid contract: {exc}", file=sys.stderr)
        return 3
    fingerprint = contract.fingerprint()
    print(f"contract     : {contract.name or 'unnamed'} (version {contract.version or '-'})")
    print(f"min cohort   : {contract.min_cohort} distinct privacy units")
    print(f"DP required  : {'yes' if contract.dp_required else 'no'}")
    print("columns      :")
    for col in contract.columns:
        print(f"  {col.name} {col.type} ({col.role_name})")
    print(f"fingerprint  : {fingerprint}")
    if args.fingerprint is not None:
        expected = args.fingerprint.strip().lower()
        if expected != fingerprint:
            print(
                f"MISMATCH: expected fingerprint {expected[:16]}…, the file has "
                f"{fingerprint[:16]}… (the contracts differ)",
                file=sys.stderr,
            )
            return 1
        print("fingerprint matches the approved one")
    return 0


def register_cli(subparsers: Any) -> None:
    """Add ``cleanjoin contract check``."""
    contract = subparsers.add_parser("contract", help="inspect output contract files")
    verbs = contract.add_subparsers(dest="contract_command", required=True)
    check = verbs.add_parser(
        "check",
        help="validate a contract file (.json, .yaml) and print its fingerprint; exit 1 when "
        "--fingerprint differs, 3 on an invalid file (no Spark needed)",
    )
    check.add_argument("file", help="the contract file")
    check.add_argument(
        "--fingerprint", default=None,
        help="the approved contract's fingerprint (as both parties signed off on it)",
    )
    check.set_defaults(func=_cli_check)
