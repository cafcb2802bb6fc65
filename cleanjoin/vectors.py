
"""Test vectors: prove both parties produce the same tokens before any join runs.

``cleanjoin vectors generate --preset pan --out vectors.csv`` writes a canonical corpus
(every card brand and length, leading zeros, every whitespace and zero-width variant,
full-width digits, dashes, invalid values, empty and null) with, for each row, the raw
value, the normalized value and the token under your key, computed by the pure-Python
reference (:mod:`cleanjoin.reference`). The header carries the spec fingerprint and the
key check value. Send the file to your partner; they run
``cleanjoin vectors verify vectors.csv``, which recomputes every row with Spark
(:func:`cleanjoin.tokens.tokenize`) under *their* key and lists mismatching row numbers —
never values. A different key is reported as a key check value mismatch.

The vectors contain only synthetic test values (public test card numbers and made-up
addresses), so the file may be shared; tokens of real identifiers are never written.

File format (CSV, UTF-8)::

    # cleanjoin token test vectors
    # spec_version: 1
    # preset: pan
    # spec_fingerprint: 1a66b0af811c0b6d
    # key_check_value: 6d15013e3b2f
    row,case,raw,normalized,token
    1,visa-13,<raw as a JSON string>,<normalized as a JSON string>,<64 hex>

``raw`` and ``normalized`` are JSON strings (``\\u00a0`` makes every invisible character
visible and unambiguous) or ``null``; ``token`` is 64 hex characters or ``null``.

Example:
    >>> rows = generate("pan", Secret.from_bytes(bytes(32)))
    >>> rows[0].case, rows[0].normalized
    ('visa-13', '4000000000006')
    >>> any(r.raw is None for r in rows) and any(r.token is None for r in rows)
    True
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cleanjoin import reference
from cleanjoin._luhn import luhn_check_digit
from cleanjoin._spark import functions_for
from cleanjoin._typing import SparkSession
from cleanjoin.errors import CleanJoinError, InvalidArgumentError, TokenSpecError
from cleanjoin.secret import Secret
from cleanjoin.spec import TokenSpec
from cleanjoin.tokens import _normalized_column, tokenize

__all__ = [
    "DEFAULT_SECRET_ENV",
    "VectorFile",
    "VectorRow",
    "VerifyResult",
    "corpus",
    "generate",
    "read_csv",
    "register_cli",
    "verify",
    "write_csv",
]

DEFAULT_SECRET_ENV = "CLEANJOIN_SECRET"
"""The environment variable the CLI reads the key from (``--secret-env`` changes it)."""

_COLUMNS = ("row", "case", "raw", "normalized", "token")
_TITLE = "cleanjoin token test vectors"


# -- corpus ---------------------------------------------------------------------------------------------
def _luhn(prefix: str, length: int) -> str:
    """A Luhn-valid number of ``length`` digits starting with ``prefix``."""
    body = (prefix + "0" * length)[: length - 1]
    return body + luhn_check_digit(body)


_BRANDS: tuple[tuple[str, str, tuple[int, ...]], ...] = (
    ("visa", "4", (13, 16, 19)),
    ("mastercard", "51", (16,)),
    ("mastercard-2series", "2221", (16,)),
    ("amex", "34", (15,)),
    ("amex", "37", (15,)),
    ("discover", "6011", (16, 19)),
    ("diners", "36", (14,)),
    ("jcb", "3528", (16, 19)),
    ("unionpay", "62", (16, 17, 18, 19)),
    ("maestro", "6759", (12, 13, 19)),
)

_WHITESPACE = [chr(c) for c in range(0x110000) if chr(c).isspace()]


def _name(ch: str) -> str:
    return f"u{ord(ch):04x}"


def _pan_corpus() -> list[tuple[str, str | None]]:
    cases: list[tuple[str, str | None]] = []
    for brand, prefix, lengths in _BRANDS:
        for length in lengths:
            cases.append((f"{brand}-{length}", _luhn(prefix, length)))
    base = "4111111111111111"
    grouped = "4111 1111 1111 1111"
    cases += [
        ("leading-zeros-16", "0004111111111111"),
        ("leading-zeros-12", "000000000012"),
        ("all-zeros-19", "0" * 19),
        ("grouped-spaces", grouped),
        ("grouped-dashes", "4111-1111-1111-1111"),
        ("amex-grouping", "3400 000000 00009"),
        ("dashes-and-spaces", " 4111 - 1111 - 1111 - 1111 "),
    ]
    for ws in _WHITESPACE:
        cases.append((f"leading-{_name(ws)}", ws + base))
        cases.append((f"trailing-{_name(ws)}", base + ws))
        cases.append((f"separator-{_name(ws)}", grouped.replace(" ", ws)))
    for zw in reference.REMOVED_CHARACTERS:
        cases.append((f"inside-{_name(zw)}", base[:8] + zw + base[8:]))
        cases.append((f"around-{_name(zw)}", zw + base + zw))
        cases.append((f"only-{_name(zw)}", zw))
    fullwidth = "".join(chr(0xFF10 + int(d)) for d in base)
    cases += [
        ("fullwidth-digits", fullwidth),
        ("fullwidth-mixed", fullwidth[:8] + base[8:]),
        ("fullwidth-hyphen", "4111\uff0d1111\uff0d1111\uff0d1111"),
        ("small-hyphen-minus", "4111\ufe631111\ufe631111\ufe631111"),
        ("ideographic-space-groups", grouped.replace(" ", "\u3000")),
        ("superscript-digits", "".join("⁰¹²³⁴⁵⁶⁷⁸⁹"[int(d)] for d in base)),
        ("mathematical-digits", "".join(chr(0x1D7CE + int(d)) for d in base)),
        ("circled-digits-12", "".join("⓪①②③④⑤⑥⑦⑧⑨"[int(d)] for d in base[:12])),
        ("circled-numbers", "4111⑪11⑨1111111"),  # ⑪ is "11", ⑨ is "9"
        ("subscript-digits", "".join(chr(0x2080 + int(d)) for d in base)),
        ("segmented-digits", "".join(chr(0x1FBF0 + int(d)) for d in base)),
        ("parenthesized-digits-invalid", "".join(chr(0x2473 + int(d)) if d != "0" else "0" for d in base)),
        ("dingbat-circled-digits-invalid", "".join(chr(0x2775 + int(d)) if d != "0" else "0" for d in base)),
        ("arabic-indic-digits-invalid", "".join(chr(0x0660 + int(d)) for d in base)),
        ("devanagari-digits-invalid", "".join(chr(0x0966 + int(d)) for d in base)),
        ("hyphen-u2010-invalid", "4111\u20101111\u20101111\u20101111"),
        ("en-dash-invalid", "4111\u20131111\u20131111\u20131111"),
        ("minus-sign-invalid", "4111\u22121111\u22121111\u22121111"),
        ("dots-invalid", "4111.1111.1111.1111"),
        ("slashes-invalid", "4111/1111/1111/1111"),
        ("plus-sign-invalid", "+4111111111111111"),
        ("letters-invalid", "4111 1111 1111 111X"),
        ("masked-invalid", "4111 11XX XXXX 1111"),
        ("too-short-11", "41111111111"),
        ("too-long-20", "41111111111111111111"),
        ("scientific-notation-invalid", "4.111111111111111E15"),
        ("decimal-suffix-invalid", "4111111111111111.0"),
        ("combining-mark-invalid", base + "\u0301"),
        ("nul-inside-invalid", base[:8] + "\x00" + base[8:]),
        ("empty", ""),
        ("spaces-only", "   "),
        ("unicode-spaces-only", "\u00a0\u2003\u3000"),
        ("dashes-only", "----"),
        ("null", None),
    ]
    return cases


def _email_corpus() -> list[tuple[str, str | None]]:
    return [
        ("plain", "alice@example.com"),
        ("uppercase", "ALICE@EXAMPLE.COM"),
        ("mixed-case", "Alice.Smith@Example.Com"),
        ("plus-tag", "alice+news@example.com"),
        ("leading-trailing-spaces", "  alice@example.com "),
        ("tab-newline", "\talice@example.com\n"),
        ("nbsp", "\u00a0alice@example.com\u00a0"),
        ("ideographic-space", "alice@example.com\u3000"),
        ("info-separators", "\x1calice@example.com\x1f"),
        ("zero-width-inside", "ali\u200bce@exa\u200dmple.com"),
        ("byte-order-mark", "\ufeffalice@example.com"),
        ("soft-hyphen", "ali\u00adce@example.com"),
        ("fullwidth", "ａｌｉｃｅ＠ｅｘａｍｐｌｅ．ｃｏｍ"),
        ("ligature-fi", "ﬁona@example.com"),
        ("turkish-dotted-capital-i", "İLKER@example.com.tr"),
        ("turkish-dotless-i", "ılker@example.com.tr"),
        ("german-sharp-s", "STRAßE@example.de"),
        ("german-capital-sharp-s", "STRAẞE@example.de"),
        ("greek-final-sigma", "ΟΔΟΣ@example.gr"),
        ("combining-acute", "jose\u0301@example.es"),
        ("precomposed-acute", "josé@example.es"),
        ("idn-domain", "bob@bücher.example"),
        ("inner-space-kept", "alice smith@example.com"),
        ("empty", ""),
        ("spaces-only", "   "),
        ("zero-width-only", "\u200b\u200c"),
        ("null", None),
    ]


def _text_corpus() -> list[tuple[str, str | None]]:
    return [
        ("ascii", "ACME Corp"),
        ("surrounding-spaces", "  ACME Corp  "),
        ("inner-double-space-kept", "ACME  Corp"),
        ("case-kept", "acme corp"),
        ("nbsp-inside", "ACME\u00a0Corp"),
        ("em-space-inside", "ACME\u2003Corp"),
        ("line-separator-inside", "ACME\u2028Corp"),
        ("ogham-space-edges", "\u1680ACME Corp\u1680"),
        ("next-line-edges", "\x85ACME Corp\x85"),
        ("zero-width-joiner", "AC\u200dME Corp"),
        ("fullwidth", "ＡＣＭＥ Ｃｏｒｐ"),
        ("ligature", "ﬀ ﬃ ﬄ"),
        ("superscript", "x² + y³"),
        ("fraction", "½ share"),
        ("angstrom-sign", "\u212bngstrom"),
        ("combining-vs-precomposed", "Cafe\u0301"),
        ("precomposed", "Café"),
        ("halfwidth-katakana", "ｶﾞｷﾞ"),
        ("hangul-jamo", "\u1100\u1161"),
        ("roman-numeral", "Ⅻ"),
        ("emoji-kept", "ACME 😀"),
        ("empty", ""),
        ("spaces-only", " \t "),
        ("null", None),
    ]


def corpus(preset: TokenSpec | str) -> list[tuple[str, str | None]]:
    """The canonical test corpus of a preset: ``(case name, raw value)`` pairs.

    Example:
        >>> dict(corpus("pan"))["fullwidth-digits"]
        '４１１１１１１１１１１１１１１１'
    """
    spec = TokenSpec.parse(preset)
    builders = {"pan": _pan_corpus, "email": _email_corpus, "text": _text_corpus}
    return builders[spec.name]()


# -- rows and files --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VectorRow:
    """One test vector: row number (from 1), case name, raw, normalized and token."""

    row: int
    case: str
    raw: str | None
    normalized: str | None
    token: str | None


@dataclass(frozen=True)
class VectorFile:
    """A parsed vectors file: header fields and rows."""

    spec_version: int
    preset: str
    spec_fingerprint: str
    key_check_value: str
    rows: tuple[VectorRow, ...]


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of :func:`verify` (row numbers only, never values).

    Attributes:
        rows: rows checked.
        key_check_value_matches: the local key's check value equals the file's.
        normalized_mismatches: rows whose Spark-normalized value differs from the file.
        token_mismatches: rows whose Spark token differs from the file.
    """

    rows: int
    key_check_value_matches: bool
    normalized_mismatches: tuple[int, ...]
    token_mismatches: tuple[int, ...]

    @property
    def ok(self) -> bool:
        """True when the key matches and every row agrees."""
        return self.key_check_value_matches and not self.normalized_mismatches and not self.token_mismatches


def generate(preset: TokenSpec | str, secret: Secret) -> list[VectorRow]:
    """Compute the vectors of a preset's corpus with the pure-Python reference.

    Example:
        >>> len(generate("email", Secret.from_bytes(bytes(32)))) > 20
        True
    """
    spec = TokenSpec.parse(preset)
    key = secret._key_bytes()
    return [
        VectorRow(
            row=i,
            case=case,
            raw=raw,
            normalized=reference.normalize(raw, spec.name),
            token=reference.token(raw, key, spec.name),
        )
        for i, (case, raw) in enumerate(corpus(spec), start=1)
    ]


def _encode(value: str | None) -> str:
    return json.dumps(value, ensure_ascii=True)


def _decode(text: str, row: int, column: str) -> str | None:
    try:
        value = json.loads(text)
    except ValueError:
        raise InvalidArgumentError(
            f"vectors file: row {row}, column {column!r} is not a JSON string or null"
        ) from None
    if value is not None and not isinstance(value, str):
        raise InvalidArgumentError(f"vectors file: row {row}, column {column!r} is not a JSON string or null")
    return value


def write_csv(path: str | Path, preset: TokenSpec | str, secret: Secret) -> int:
    """Generate the vectors of ``preset`` and write them to ``path``; returns the row count."""
    spec = TokenSpec.parse(preset)
    rows = generate(spec, secret)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        handle.write(f"# {_TITLE}\n")
        handle.write(f"# spec_version: {spec.version}\n")
        handle.write(f"# preset: {spec.name}\n")
        handle.write(f"# spec_fingerprint: {spec.fingerprint()}\n")
        handle.write(f"# key_check_value: {secret.check_value()}\n")
        handle.write("# raw and normalized are JSON strings or null; token is 64 hex or null\n")
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(_COLUMNS)
        for r in rows:
            writer.writerow([r.row, r.case, _encode(r.raw), _encode(r.normalized), r.token or "null"])
    return len(rows)


def read_csv(path: str | Path) -> VectorFile:
    """Parse a vectors file.

    Raises:
        InvalidArgumentError: the file is missing or malformed.
        TokenSpecError: its spec version or preset is unknown.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgumentError(f"vectors file {str(path)!r} cannot be read ({type(exc).__name__})") from None
    header: dict[str, str] = {}
    body: list[str] = []
    for line in text.split("\n"):  # not splitlines(): it also splits on \x1c-\x1e, \x85, \u2028
        if line.startswith("#") and not body:
            name, sep, value = line[1:].partition(":")
            if sep:
                header[name.strip()] = value.strip()
        else:
            body.append(line)
    missing = [k for k in ("spec_version", "preset", "spec_fingerprint", "key_check_value") if k not in header]
    if missing:
        raise InvalidArgumentError(f"vectors file {str(path)!r}: header lacks {', '.join(missing)}")
    try:
        version = int(header["spec_version"])
    except ValueError:
        raise InvalidArgumentError(f"vectors file {str(path)!r}: spec_version is not an integer") from None
    spec = TokenSpec(header["preset"], version)
    reader = csv.reader(body)
    columns = next(reader, None)
    if columns is None or tuple(columns) != _COLUMNS:
        raise InvalidArgumentError(
            f"vectors file {str(path)!r}: expected the columns {', '.join(_COLUMNS)}"
        )
    rows = []
    for line_number, record in enumerate(reader, start=1):
        if not record:
            continue  # blank line
        if len(record) != len(_COLUMNS) or not record[0].isdigit():
            raise InvalidArgumentError(
                f"vectors file: data line {line_number} is not 'row,case,raw,normalized,token' "
                "with an integer row number"
            )
        number = int(record[0])
        token = None if record[4] == "null" else record[4]
        rows.append(VectorRow(number, record[1], _decode(record[2], number, "raw"),
                              _decode(record[3], number, "normalized"), token))
    return VectorFile(version, spec.name, header["spec_fingerprint"], header["key_check_value"], tuple(rows))


def verify(path: str | Path, *, secret: Secret, spark: SparkSession) -> VerifyResult:
    """Recompute a vectors file with Spark under the local key.

    Normalization is compared row by row whatever the key; tokens are compared too (they
    all differ when the key check values differ).

    Raises:
        TokenSpecError: the file's spec fingerprint does not match this cleanjoin's spec.
        InvalidArgumentError: the file is malformed.

    Example:
        >>> result = verify("vectors.csv", secret=secret, spark=spark)  # doctest: +SKIP
        >>> result.ok, result.token_mismatches  # doctest: +SKIP
        (True, ())
    """
    data = read_csv(path)
    spec = TokenSpec(data.preset, data.spec_version)
    if data.spec_fingerprint != spec.fingerprint():
        raise TokenSpecError(
            f"vectors file: spec fingerprint {data.spec_fingerprint} does not match "
            f"{spec.fingerprint()} of spec version {spec.version} preset {spec.name!r}"
        )
    df = spark.createDataFrame([(r.row, r.raw) for r in data.rows], "row int, raw string")
    F = functions_for(df)
    normalized = df.select("row", _normalized_column(F, F.col("raw"), spec.name).alias("normalized"))
    tokens = tokenize(df, {"raw": spec}, secret=secret)
    computed = {
        r["row"]: (r["normalized"], r["raw_token"])
        for r in normalized.join(tokens, on="row").collect()
    }
    norm_bad = tuple(r.row for r in data.rows if computed.get(r.row, ("", ""))[0] != r.normalized)
    token_bad = tuple(r.row for r in data.rows if computed.get(r.row, ("", ""))[1] != r.token)
    return VerifyResult(
        rows=len(data.rows),
        key_check_value_matches=secret.check_value() == data.key_check_value,
        normalized_mismatches=norm_bad,
        token_mismatches=token_bad,
    )


# -- CLI ---------------------------------------------------------------------------------------------------
def _secret_from_args(args: argparse.Namespace) -> Secret:
    if args.secret_file:
        return Secret.from_file(args.secret_file)
    return Secret.from_env(args.secret_env)


def _rows_list(rows: Sequence[int], limit: int = 50) -> str:
    shown = ", ".join(str(r) for r in rows[:limit])
    return shown + (f", ... ({len(rows) - limit} more)" if len(rows) > limit else "")


def _active_or_local_spark() -> tuple[Any, bool]:
    from pyspark.sql import SparkSession as ClassicSession

    active = ClassicSession.getActiveSession()
    if active is not None:
        return active, False
    from cleanjoin.session import local_spark

    return local_spark(app_name="cleanjoin-vectors"), True


def _cli_generate(args: argparse.Namespace) -> int:
    try:
        secret = _secret_from_args(args)
        count = write_csv(args.out, args.preset, secret)
    except CleanJoinError as exc:
        print(f"cleanjoin vectors generate: {exc}", file=sys.stderr)
        return 3
    spec = TokenSpec.preset(args.preset)
    print(
        f"wrote {count} {spec.name} vectors to {args.out} "
        f"(spec {spec.fingerprint()}, key check value {secret.check_value()})"
    )
    return 0


def _cli_verify(args: argparse.Namespace) -> int:
    try:
        secret = _secret_from_args(args)
        header = read_csv(args.file)
        spark, started = _active_or_local_spark()
        try:
            result = verify(args.file, secret=secret, spark=spark)
        finally:
            if started:
                spark.stop()
    except CleanJoinError as exc:
        print(f"cleanjoin vectors verify: {exc}", file=sys.stderr)
        return 3
    print(f"checked {result.rows} {header.preset} vectors from {args.file}")
    code = 0
    if not result.key_check_value_matches:
        print(
            f"KEY CHECK VALUE MISMATCH: the file was made with key {header.key_check_value}, "
            f"the local key is {secret.check_value()}; agree on the key before comparing tokens"
        )
        code = 2
    if result.normalized_mismatches:
        print(f"normalization differs in rows: {_rows_list(result.normalized_mismatches)}")
        code = code or 1
    if result.token_mismatches and result.key_check_value_matches:
        print(f"token differs in rows: {_rows_list(result.token_mismatches)}")
        code = code or 1
    if code == 0:
        print("all rows match (normalized values and tokens)")
    return code


def register_cli(subparsers: Any) -> None:
    """Add ``cleanjoin vectors generate`` and ``cleanjoin vectors verify``."""
    vectors = subparsers.add_parser("vectors", help="generate or verify token test vectors")
    sub = vectors.add_subparsers(dest="vectors_command", required=True)

    def key_options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--secret-env", default=DEFAULT_SECRET_ENV,
            help=f"environment variable holding the key (default {DEFAULT_SECRET_ENV}; "
            "value 'base64:...', 'hex:...' or text)",
        )
        parser.add_argument("--secret-file", default=None, help="read the raw key bytes from this file instead")

    gen = sub.add_parser("generate", help="write the canonical corpus with tokens under your key")
    gen.add_argument("--preset", required=True, choices=list(reference.PRESETS))
    gen.add_argument("--out", required=True, help="output CSV path")
    key_options(gen)
    gen.set_defaults(func=_cli_generate)

    ver = sub.add_parser(
        "verify",
        help="recompute a vectors file with Spark and your key; exit 1 on row mismatches, "
        "2 on a key check value mismatch, 3 on a bad file",
    )
    ver.add_argument("file", help="vectors CSV written by 'cleanjoin vectors generate'")
    key_options(ver)
    ver.set_defaults(func=_cli_verify)
