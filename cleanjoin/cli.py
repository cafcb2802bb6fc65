"""The ``cleanjoin`` command line.

Example:
    >>> build_parser().parse_args(["demo", "--rows", "1000"]).rows
    1000
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["build_parser", "main"]

# Modules that add sub-commands. Each exposes ``register_cli(subparsers) -> None``, which
# adds its parsers and sets ``func`` (a callable taking the parsed Namespace, returning the
# exit code) with ``set_defaults``. Imported lazily so ``cleanjoin --help`` stays fast.
_COMMAND_MODULES: tuple[str, ...] = (
    "cleanjoin.vectors",  # issue 3: vectors generate / verify
    "cleanjoin.audit",  # issue 6: audit export / verify
    "cleanjoin.contract",  # issue 4: contract check
    "cleanjoin._verifycli",  # issue 20: verify-output
)


def _demo(args: argparse.Namespace) -> int:
    from cleanjoin.demo import run_demo

    summary = run_demo(rows=args.rows, seed=args.seed, out=args.out, connect=args.connect,
                       profile=args.profile)
    print()
    print(summary)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``cleanjoin`` command."""
    parser = argparse.ArgumentParser(prog="cleanjoin", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the clean-room flow end to end on synthetic data")
    demo.add_argument("--rows", type=int, default=300_000, help="rows to generate")
    demo.add_argument("--seed", type=int, default=7, help="generator seed")
    demo.add_argument("--out", default=None, help="output folder (default: a temp folder)")
    demo.add_argument("--connect", action="store_true", help="run on a local Spark Connect server")
    demo.add_argument("--profile", action="store_true",
                      help="print each step's wall time and the Spark jobs it ran")
    demo.set_defaults(func=_demo)
    import importlib

    for name in _COMMAND_MODULES:
        importlib.import_module(name).register_cli(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cleanjoin`` console script."""
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
