"""The one leak scanner (cleanjoin._leak) and the three places that ask it.

A table of look-alikes (card numbers, e-mail addresses, tokens, key material, in the
forms they take when someone tries to slip them past a check) and a table of harmless
values (amounts, dates, paths, short ids, UUIDs). Audit entry validation, the contract
review and the revocation list's free-text columns must refuse exactly the look-alikes;
the Python and the Spark form of the scanner must name the same finding for each value.
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import datetime
from typing import Any

import pytest

from cleanjoin._leak import LEAK_KINDS, find_leak, first_leak_column, leak_columns
from cleanjoin._spark import functions_for
from cleanjoin.audit import check_parameters
from cleanjoin.contract import ContractColumn, OutputContract
from cleanjoin.errors import InvalidArgumentError, RevocationInputError
from cleanjoin.guard import GuardedResult, GuardReport
from cleanjoin.revocation import load_revocations

_TOKEN = hashlib.sha256(b"person-1").hexdigest()

LOOKALIKES: list[tuple[str, str]] = [
    ("4111111111111111", "card"),
    ("card 4111-1111-1111-1111 seen", "card"),
    ("378282246310005", "card"),
    ("3782 822463 10005", "card"),
    ("0004111111111111111", "card"),
    ("4111.1111.1111.1111", "card"),
    ("4111/1111/1111/1111", "card"),
    ("ref 12-4111111111111111", "card"),
    ("Alice.Smith@Example.com", "email"),
    ("contact: a@b.example", "email"),
    (_TOKEN, "hex"),
    (_TOKEN.upper(), "hex"),
    ("tok:" + _TOKEN, "hex"),
    ("DEADBEEF" * 4, "hex"),
    ("-".join(_TOKEN[i : i + 8] for i in range(0, 64, 8)), "split_hex"),
    (" ".join(_TOKEN[i : i + 4] for i in range(0, 64, 4)), "split_hex"),
    (":".join(_TOKEN[i : i + 16] for i in range(0, 64, 16)), "split_hex"),
    (_TOKEN[:20], "short_hex"),  # truncated
    (_TOKEN[:22], "short_hex"),  # the first of three columns a token was split over
    (_TOKEN[:32], "hex"),  # the first of two
    (base64.b32encode(bytes.fromhex(_TOKEN)).decode(), "base32"),
    (base64.b32encode(bytes.fromhex(_TOKEN)).decode().rstrip("=").lower(), "base32"),
    (base64.b64encode(bytes.fromhex(_TOKEN)).decode(), "base64"),
    (base64.urlsafe_b64encode(bytes.fromhex(_TOKEN)).decode().rstrip("="), "base64"),
    ("q3Z8xK1vT0pL9sW2mN4bR7yU6hJ5gF3dS1aQ0wE8rT2=", "base64"),
]

HARMLESS = [
    "1234.56",
    "19.99",
    "2026-11-26",
    "2026-11-26 12:00:00",
    "2026/11/26",
    "2026-11-weekly",
    "/tmp/pytest-of-root/pytest-12/test_x0/gold",
    "1234567890123",  # 13 digits, not Luhn-valid
    "4111111111111112",  # 16 digits, not Luhn-valid
    "123e4567-e89b-12d3-a456-426614174000",  # a UUID: 32 hex digits split by dashes
    "M1",
    "plain",
    "opt_out",
    "merchant_category_code_and_more_text_here_x",
    "cafe dead beef face",
    "CONSORTIUM_ELIGIBLE",
    "1234567890123456",  # 16 digits: no hex letter (and not Luhn-valid)
    "ACCOUNT_REFERENCE_NUMBER_FOR_THE_CONSUMER",  # capitals: base32 letters, no digit
    "",
]


def test_the_tables_are_what_they_say() -> None:
    for value, kind in LOOKALIKES:
        assert find_leak(value) == kind, value
    for value in HARMLESS:
        assert find_leak(value) is None, value
    assert {kind for _, kind in LOOKALIKES} == set(LEAK_KINDS)


def test_a_digest_passes_only_where_the_caller_allows_it() -> None:
    assert find_leak(_TOKEN, digest_ok=True) is None
    assert find_leak("x " + _TOKEN, digest_ok=True) == "hex"
    assert find_leak(_TOKEN.upper(), digest_ok=True) == "hex"


def test_a_short_spec_fingerprint_passes_only_where_the_caller_allows_it() -> None:
    # A token spec's fingerprint (16 hex digits) is an audit entry's ``spec_fingerprint``.
    fingerprint = "1a66b0af811c0b6d"
    assert find_leak(fingerprint) == "short_hex"
    assert find_leak(fingerprint, digest_ok=True) is None
    assert find_leak(_TOKEN[:20], digest_ok=True) == "short_hex"
    assert find_leak(_TOKEN[:32], digest_ok=True) == "hex"


def test_spark_and_python_forms_agree(spark: Any) -> None:
    values = [v for v, _ in LOOKALIKES] + HARMLESS
    df = spark.createDataFrame([(i, v) for i, v in enumerate(values)] + [(-1, None)],
                               "i int, v string")
    F = functions_for(df)
    flags = leak_columns(F, F.col("v"))
    rows = df.select(
        "i", "v", first_leak_column(F, F.col("v")).alias("first"),
        *[column.alias(kind) for kind, column in flags.items()],
    ).collect()
    for row in rows:
        if row["v"] is None:
            assert row["first"] is None
            assert not any(row[kind] for kind in LEAK_KINDS)
            continue
        assert row["first"] == find_leak(row["v"]), row["i"]
        for kind in LEAK_KINDS:  # each column tests its own rule, whatever comes first
            assert row[kind] == _breaks(row["v"], kind), (row["i"], kind)


def _breaks(value: str, kind: str) -> bool:
    """Does ``value`` break rule ``kind`` alone? (The first finding hides later rules.)"""
    from cleanjoin import _leak

    checks = {
        "card": _leak._card,
        "email": lambda v: _leak._RE["email"].search(v) is not None,
        "hex": lambda v: _leak._RE["hex"].search(v) is not None,
        "split_hex": _leak._split_hex,
        "short_hex": _leak._short_hex,
        "base32": _leak._base32,
        "base64": lambda v: any(_leak._random_like(m.group())
                                for m in _leak._RE["base64"].finditer(v)),
    }
    return bool(checks[kind](value))


def test_audit_entries_refuse_exactly_the_lookalikes() -> None:
    for value, _ in LOOKALIKES:
        with pytest.raises(InvalidArgumentError, match=re.escape("parameters['x'] looks like")):
            check_parameters({"x": value})
    for value in HARMLESS:
        assert check_parameters({"x": value}) == {"x": value}


def test_contract_review_refuses_exactly_the_lookalikes(spark: Any) -> None:
    values = [v for v, _ in LOOKALIKES] + HARMLESS
    names = [f"d{i}" for i in range(len(values))]
    contract = OutputContract(
        columns=(*(ContractColumn(n, "string", "dimension") for n in names),
                 ContractColumn("n", "bigint", "cohort_count")),
        min_cohort=10,
    )
    df = spark.createDataFrame([(*values, 12)], ", ".join(f"{n} string" for n in names) + ", n bigint")
    report = GuardReport(
        run_id="00000000-0000-4000-8000-000000000000", group_by=tuple(names),
        aggregates=({"name": "n", "kind": "count", "column": None, "bounds": None},),
        min_cohort=10, privacy_unit="card_number_token", groups_released=1,
        groups_suppressed=0, dp=None,
    )
    review = contract.review(GuardedResult(df, report))
    flagged = {re.match(r"column '(d\d+)'", r).group(1) for r in review.reasons}  # type: ignore[union-attr]
    assert flagged == {f"d{i}" for i in range(len(LOOKALIKES))}
    text = " ".join(review.reasons)
    assert not any(v in text for v, _ in LOOKALIKES)


def _revocations(spark: Any, reasons: list[str]) -> Any:
    when = datetime(2026, 11, 26)
    rows = [(hashlib.sha256(f"r{i}".encode()).hexdigest(), when, reason, "bank")
            for i, reason in enumerate(reasons)]
    return spark.createDataFrame(rows, "token string, revoked_at timestamp, reason_code string, "
                                       "source string")


def test_revocation_lists_refuse_exactly_the_lookalikes(spark: Any) -> None:
    assert load_revocations(_revocations(spark, HARMLESS)).count() == len(HARMLESS)
    mixed = [v for v, _ in LOOKALIKES] + HARMLESS
    with pytest.raises(RevocationInputError) as info:
        load_revocations(_revocations(spark, mixed))
    message = str(info.value)
    assert f"{len(LOOKALIKES)} of {len(mixed)} revocation rows" in message
    assert not any(v in message for v, _ in LOOKALIKES)
