"""The same queries give the same answers on every supported Spark line.

A small fixed query (tokens of fixed values; a guarded join with ``min_cohort``) is compared
with the expected table in ``tests/data/golden_v1.json``: tokens bit for bit, released rows
exactly. The main suite checks it on the main pins and ``./run test`` checks it again on
Spark 3.5 + Delta 3.3 and Spark 4.0 + Delta 4.0 (the ``compat`` marker).

``CLEANJOIN_WRITE_GOLDEN=1`` rewrites the table from the running version; do that only on
purpose, and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from cleanjoin import agg
from cleanjoin.guard import GuardedJoin
from cleanjoin.secret import Secret
from cleanjoin.spec import TokenSpec
from cleanjoin.tokens import tokenize

pytestmark = pytest.mark.compat

GOLDEN = Path(__file__).with_name("data") / "golden_v1.json"
SECRET = Secret.from_bytes(bytes(range(101, 141)))

# Raw values that exercise normalization: spaces, dashes, full-width digits, case, accents,
# invalid PANs, empty and null.
VALUES = [
    " 4111 1111 1111 1111 ",
    "5500-0000-0000-0004",
    "４０１２８８８８８８８８１８８１",
    "4111111111111112",
    " Alice@Example.COM ",
    "zoë@exämple.de",
    "Straße",
    "",
    None,
]

# Cohorts at the threshold edges: 100 people (released), 99 (suppressed), 150 people with
# three rows each (released), 5 (suppressed).
SEGMENTS = {"S0": (100, 1), "S1": (99, 1), "S2": (150, 3), "S3": (5, 2)}


def _tokens(spark: Any) -> list[dict[str, Any]]:
    df = spark.createDataFrame(
        [(i, v, v, v) for i, v in enumerate(VALUES)], "id int, pan string, email string, note string"
    )
    out = tokenize(df, {"pan": "pan", "email": "email", "note": TokenSpec.preset("text")}, secret=SECRET)
    return [r.asDict() for r in out.orderBy("id").collect()]


def _released(spark: Any) -> list[dict[str, Any]]:
    left: list[tuple[Any, ...]] = []
    right: list[tuple[Any, ...]] = []
    person = 0
    for segment, (people, rows_each) in SEGMENTS.items():
        for _ in range(people):
            email = f"person{person}@example.com"
            left += [(email, segment, person % 7, person % 2)] * rows_each
            right.append((email, "new" if person % 3 else "old"))
            person += 1
    provider = tokenize(
        spark.createDataFrame(left, "email string, segment string, amount int, flag int"),
        {"email": "email"},
        secret=SECRET,
    )
    consumer = tokenize(
        spark.createDataFrame(right, "email string, band string"), {"email": "email"}, secret=SECRET
    )
    result = (
        GuardedJoin(provider, consumer, on="email_token")
        .group_by("segment")
        .agg(
            agg.count().alias("records"),
            agg.sum("amount", bounds=(0, 6)).alias("amount_sum"),
            agg.mean("flag", bounds=(0, 1)).alias("flag_rate"),
        )
        .min_cohort(100)
        .run()
    )
    report = result.report
    rows = [r.asDict() for r in result.df.orderBy("segment").collect()]
    rows.append({"groups_released": report.groups_released, "groups_suppressed": report.groups_suppressed})
    return rows


def test_same_tokens_and_released_rows_on_every_spark(spark: Any) -> None:
    got = {"tokens": _tokens(spark), "released": _released(spark)}
    if os.environ.get("CLEANJOIN_WRITE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    expected = json.loads(GOLDEN.read_text())
    assert got["tokens"] == expected["tokens"]
    assert got["released"] == expected["released"]
