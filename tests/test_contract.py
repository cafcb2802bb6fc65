"""Tests of cleanjoin.contract and the review-gated Delta write of cleanjoin.guard."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from typing import Any

import pytest
from chispa import assert_df_equality

from cleanjoin import agg
from cleanjoin.contract import ColumnRole, ContractColumn, OutputContract, Review
from cleanjoin.errors import ContractViolation, InvalidArgumentError, NotAllowedError
from cleanjoin.guard import GuardedJoin, GuardedResult, GuardReport

CONTRACT = OutputContract(
    columns=(
        ContractColumn("segment", "string", "dimension"),
        ContractColumn("n", "bigint", "cohort_count"),
        ContractColumn("rate", "double", "measure"),
    ),
    min_cohort=10,
    name="segments",
    version="1",
)


def tok(i: int) -> str:
    return hashlib.sha256(f"person-{i}".encode()).hexdigest()


def fake_result(spark: Any, data: list[tuple[Any, ...]], schema: str, *, min_cohort: int = 10,
                dp: dict[str, Any] | None = None) -> GuardedResult:
    df = spark.createDataFrame(data, schema)
    report = GuardReport(
        run_id="00000000-0000-4000-8000-000000000000", group_by=("segment",),
        aggregates=({"name": "n", "kind": "count", "column": None, "bounds": None},
                    {"name": "rate", "kind": "mean", "column": "f", "bounds": [0.0, 1.0]}),
        min_cohort=min_cohort, privacy_unit="card_number_token", groups_released=len(data),
        groups_suppressed=0, dp=dp,
    )
    return GuardedResult(df, report)


GOOD = [("a", 12, 0.5), ("b", 10, 0.25)]
GOOD_SCHEMA = "segment string, n bigint, rate double"


# --------------------------------------------------------------------------- pure


def test_json_round_trip_and_fingerprint() -> None:
    text = CONTRACT.to_json()
    assert json.loads(text)["format"] == "cleanjoin.output_contract/v1"
    again = OutputContract.from_json(text)
    assert again == CONTRACT
    assert again.fingerprint() == CONTRACT.fingerprint()
    changed = dataclasses.replace(CONTRACT, min_cohort=11)
    assert changed.fingerprint() != CONTRACT.fingerprint()
    assert CONTRACT.column("n").role is ColumnRole.COHORT_COUNT
    with pytest.raises(dataclasses.FrozenInstanceError):
        CONTRACT.min_cohort = 1  # type: ignore[misc]


def test_yaml_round_trip_has_the_json_fingerprint(tmp_path: Any) -> None:
    text = CONTRACT.to_yaml()
    assert text.startswith("format: cleanjoin.output_contract/v1\n")
    assert "version: '1'" in text  # a string stays a string
    assert OutputContract.from_yaml(text) == CONTRACT
    hand_written = """
# approved by the data-sharing board, 2026-11
name: segments
version: "1"
min_cohort: 10
columns:
  - {name: segment, type: STRING, role: dimension}
  - {name: n, type: bigint, role: cohort_count}
  - name: rate
    type: double
    role: measure   # every column states its role
"""
    assert OutputContract.from_yaml(hand_written).fingerprint() == CONTRACT.fingerprint()
    for name in ("c.yaml", "c.yml", "c.json"):
        path = CONTRACT.save(tmp_path / name)
        assert OutputContract.load(path) == CONTRACT
    assert (tmp_path / "c.yml").read_text().startswith("format:")
    assert json.loads((tmp_path / "c.json").read_text())["min_cohort"] == 10


def test_yaml_errors_are_precise(tmp_path: Any) -> None:
    with pytest.raises(InvalidArgumentError, match=re.escape("not valid YAML at line 2, column 8")):
        OutputContract.from_yaml("min_cohort: 10\nname: a: b\n")
    with pytest.raises(InvalidArgumentError, match=re.escape("quote it")):
        OutputContract.from_yaml("min_cohort: 10\nversion: 1.10\ncolumns: [{name: n, type: int, role: measure}]")
    with pytest.raises(InvalidArgumentError, match="expected a JSON object"):
        OutputContract.from_yaml("- just\n- a list\n")
    with pytest.raises(InvalidArgumentError, match="not valid YAML"):
        OutputContract.from_yaml("!!python/object/apply:os.system ['true']")  # safe_load only
    with pytest.raises(InvalidArgumentError, match=re.escape("column 'n' has no ['role']")):
        OutputContract.from_yaml("min_cohort: 10\ncolumns: [{name: n, type: int}]")
    with pytest.raises(InvalidArgumentError, match=re.escape("cannot read")):
        OutputContract.load(tmp_path / "missing.yaml")


def test_yaml_refuses_a_key_given_twice() -> None:
    text = CONTRACT.to_yaml().replace("min_cohort: 10", "min_cohort: 10\nmin_cohort: 1000")
    with pytest.raises(InvalidArgumentError, match=re.escape("key 'min_cohort' is given twice")):
        OutputContract.from_yaml(text)


def test_cohort_count_columns_are_integers() -> None:
    with pytest.raises(InvalidArgumentError, match=re.escape("must have an integer type")):
        ContractColumn("n", "double", "cohort_count")
    assert ContractColumn("n", "INT", "cohort_count").type == "int"


def test_contract_validation_messages() -> None:
    with pytest.raises(NotAllowedError, match="'card_number_token' is a token column"):
        ContractColumn("card_number_token", "string", "dimension")
    with pytest.raises(InvalidArgumentError, match=re.escape('Unknown column role "size". Available options are "dimension", "measure", "cohort_count", "grouping".')):
        ContractColumn("n", "bigint", "size")
    with pytest.raises(InvalidArgumentError, match=re.escape("duplicate column names ['n']")):
        OutputContract(columns=(ContractColumn("n", "bigint"), ContractColumn("n", "int")), min_cohort=5)
    with pytest.raises(InvalidArgumentError, match="'min_cohort' must be an integer >= 1"):
        OutputContract(columns=(ContractColumn("n", "bigint"),), min_cohort=0)
    with pytest.raises(InvalidArgumentError, match=re.escape("unknown keys ['extra']")):
        OutputContract.from_dict({**CONTRACT.to_dict(), "extra": 1})
    with pytest.raises(InvalidArgumentError, match="unsupported format"):
        OutputContract.from_dict({**CONTRACT.to_dict(), "format": "other/v9"})
    with pytest.raises(InvalidArgumentError, match="not valid JSON"):
        OutputContract.from_json("{nope")
    with pytest.raises(InvalidArgumentError, match="a rejected review needs at least one reason"):
        Review(approved=False, reasons=(), contract_fingerprint="0" * 64)


# --------------------------------------------------------------------------- review reasons


def test_compliant_result_is_approved(spark: Any) -> None:
    review = CONTRACT.review(fake_result(spark, GOOD, GOOD_SCHEMA))
    assert review == Review(approved=True, reasons=(), contract_fingerprint=CONTRACT.fingerprint())
    assert "approved" in str(review)


def test_each_rejection_reason(spark: Any) -> None:
    # unexpected + missing column, wrong type
    review = CONTRACT.review(
        fake_result(spark, [("a", 12, "x")], "segment string, n int, extra string")
    )
    assert not review.approved
    assert review.reasons == (
        "column 'extra' is not allowed by the contract",
        "column 'rate' required by the contract is missing",
        "column 'n' has type int, the contract expects bigint",
    )
    # cohort count below the minimum (count only, never the value)
    low = CONTRACT.review(fake_result(spark, [("a", 3, 0.5), ("b", None, 0.1), ("c", 10, 0.2)],
                                      GOOD_SCHEMA))
    assert low.reasons == (
        "column 'n' (cohort_count) has 2 value(s) below the contract's minimum cohort 10 or null",
    )
    # threshold lower than the contract's; DP required and not used
    dp_contract = dataclasses.replace(CONTRACT, dp_required=True)
    weak = dp_contract.review(fake_result(spark, GOOD, GOOD_SCHEMA, min_cohort=5))
    assert weak.reasons == (
        "the run's minimum cohort 5 is lower than the contract's 10",
        "the contract requires differential privacy, and the run did not use it",
    )
    assert dp_contract.review(fake_result(spark, GOOD, GOOD_SCHEMA, dp={"epsilon": 1.0})).approved


def test_token_and_card_lookalikes_are_rejected_without_echo(spark: Any) -> None:
    card = "4111 1111 1111 1111"  # Luhn-valid test PAN
    data = [(tok(1), 12, 0.5), (card, 12, 0.5), ("4111111111111112", 12, 0.5), ("plain", 10, 0.1)]
    review = CONTRACT.review(fake_result(spark, data, GOOD_SCHEMA))
    assert review.reasons == (
        "column 'segment' has 1 value(s) that look like tokens (64 hexadecimal or 43 base64 "
        "characters)",
        "column 'segment' has 1 value(s) that look like card numbers (12-19 digits, Luhn-valid)",
    )
    text = str(review) + json.dumps(review.to_dict())
    assert tok(1) not in text
    assert "4111" not in text


# --------------------------------------------------------------------------- draft from a result


def _real_result(spark: Any, min_cohort: int = 3) -> GuardedResult:
    left = spark.createDataFrame(
        [(tok(i), "M1" if i < 6 else "M2", i % 2) for i in range(10)],
        "card_number_token string, segment string, f int",
    )
    right = spark.createDataFrame([(tok(i), "x") for i in range(10)],
                                  "card_number_token string, band string")
    return (
        GuardedJoin(left, right, on="card_number_token")
        .group_by("segment")
        .agg(agg.count().alias("n"), agg.mean("f", bounds=(0, 1)).alias("rate"))
        .min_cohort(min_cohort)
        .run()
    )


def test_values_hidden_in_text_binary_nested_and_numeric_columns_are_found(
    spark: Any,
) -> None:
    from pyspark.sql.types import (
        ArrayType,
        BinaryType,
        DecimalType,
        LongType,
        StringType,
        StructField,
        StructType,
    )

    token = tok(3)
    contract = OutputContract(
        columns=(
            ContractColumn("segment", "string", "dimension"),
            ContractColumn("raw", "binary", "dimension"),
            ContractColumn("tags", "array<string>", "dimension"),
            ContractColumn("card_like", "bigint", "dimension"),
            ContractColumn("big_dim", "decimal(19,0)", "dimension"),
            ContractColumn("n", "bigint", "cohort_count"),
            ContractColumn("total", "bigint", "measure"),
        ),
        min_cohort=10,
    )
    schema = StructType([
        StructField("segment", StringType()), StructField("raw", BinaryType()),
        StructField("tags", ArrayType(StringType())), StructField("card_like", LongType()),
        StructField("big_dim", DecimalType(19, 0)), StructField("n", LongType()),
        StructField("total", LongType()),
    ])
    from decimal import Decimal

    luhn = 4111111111111111
    rows = [
        (f"tok:{token}", bytes.fromhex(token), ["a", f"x {token}"], luhn, Decimal(luhn), 12, luhn),
        ("card 4111-1111-1111-1111 here", b"\x01\x02", ["b"], 7, Decimal(5), 12, luhn),
        ("plain", None, None, None, None, 10, 3),
    ]
    df = spark.createDataFrame(rows, schema)
    report = fake_result(spark, GOOD, GOOD_SCHEMA).report
    review = contract.review(GuardedResult(df, report))
    assert review.reasons == (
        "column 'segment' has 1 value(s) that look like tokens (64 hexadecimal or 43 base64 "
        "characters)",
        "column 'segment' has 1 value(s) that look like card numbers (12-19 digits, Luhn-valid)",
        "column 'raw' has 1 value(s) that look like tokens (64 hexadecimal or 43 base64 "
        "characters)",
        "column 'tags' has 1 value(s) that look like tokens (64 hexadecimal or 43 base64 "
        "characters)",
        "column 'card_like' has 1 value(s) that look like card numbers (12-19 digits, Luhn-valid)",
        "column 'big_dim' has 1 value(s) that look like card numbers (12-19 digits, Luhn-valid)",
    )  # 'total' is a measure: a large sum is Luhn-valid one time in ten, never scanned
    for reason in review.reasons:
        assert token not in reason
        assert "4111" not in reason


def test_a_contract_drafted_from_a_dp_result_treats_counts_as_measures(spark: Any) -> None:
    draft = OutputContract.from_result(fake_result(spark, GOOD, GOOD_SCHEMA, dp={"epsilon": 1.0}))
    assert draft.column("n").role is ColumnRole.MEASURE
    assert draft.dp_required


def test_only_a_guarded_runs_result_can_be_written(spark_classic: Any, delta_path: str) -> None:
    import os

    from cleanjoin.errors import NotAllowedError as Refused

    forged = fake_result(spark_classic, GOOD, GOOD_SCHEMA, min_cohort=10**6)
    assert CONTRACT.review(forged).approved  # it can be reviewed ...
    with pytest.raises(Refused, match=re.escape("not returned by a guarded run")):
        forged.write_delta(delta_path, contract=CONTRACT)  # ... never written
    real = _real_result(spark_classic)
    copied = dataclasses.replace(real, df=forged.df)
    with pytest.raises(Refused, match=re.escape("not returned by a guarded run")):
        copied.write_delta(delta_path, contract=CONTRACT)
    assert not os.path.exists(delta_path)
    assert "_sealed" not in repr(real)


def test_from_result_drafts_a_matching_contract(spark_classic: Any) -> None:
    result = _real_result(spark_classic)
    draft = OutputContract.from_result(result, name="segments", version="1")
    assert [c.to_dict() for c in draft.columns] == [
        {"name": "segment", "type": "string", "role": "dimension"},
        {"name": "n", "type": "bigint", "role": "cohort_count"},
        {"name": "rate", "type": "double", "role": "measure"},
    ]
    assert (draft.min_cohort, draft.dp_required) == (3, False)
    assert draft.review(result).approved
    assert draft.review(_real_result(spark_classic, min_cohort=2)).reasons == (
        "the run's minimum cohort 2 is lower than the contract's 3",
    )


# --------------------------------------------------------------------------- Delta gate


def _history(spark: Any, path: str) -> list[Any]:
    return spark.sql(f"DESCRIBE HISTORY delta.`{path}`").orderBy("version").collect()


def test_approved_result_is_one_commit_with_metadata(spark: Any, delta_path: str) -> None:
    result = _real_result(spark)
    contract = OutputContract.from_result(result, name="segments")
    first = result.write_delta(delta_path, contract=contract)
    assert first == 0
    second = result.write_delta(delta_path, contract=contract)
    assert second == 1
    history = _history(spark, delta_path)
    assert [h["version"] for h in history] == [0, 1]
    meta = json.loads(history[1]["userMetadata"])
    assert meta["contract_fingerprint"] == contract.fingerprint()
    assert meta["run_id"] == result.run_id
    assert meta["release_id"] is None
    assert_df_equality(spark.read.format("delta").load(delta_path), result.df,
                       ignore_row_order=True, ignore_nullable=True)


def test_rejected_result_leaves_table_untouched(spark: Any, delta_path: str) -> None:
    result = _real_result(spark)
    contract = OutputContract.from_result(result, name="segments")
    assert result.write_delta(delta_path, contract=contract) == 0
    before = spark.read.format("delta").load(delta_path).collect()
    strict = dataclasses.replace(contract, min_cohort=50)
    with pytest.raises(ContractViolation, match="nothing was written") as info:
        result.write_delta(delta_path, contract=strict, mode="overwrite")
    assert info.value.reasons == (
        "the run's minimum cohort 3 is lower than the contract's 50",
        "column 'n' (cohort_count) has 2 value(s) below the contract's minimum cohort 50 or null",
    )
    assert [h["version"] for h in _history(spark, delta_path)] == [0]
    after = spark.read.format("delta").load(delta_path).collect()
    assert sorted(map(tuple, after)) == sorted(map(tuple, before))


def test_rejected_result_creates_no_table(spark_classic: Any, delta_path: str) -> None:
    result = _real_result(spark_classic)
    bad = OutputContract(columns=(ContractColumn("segment", "string", "dimension"),), min_cohort=3)
    with pytest.raises(ContractViolation, match=re.escape("column 'n' is not allowed")):
        result.write_delta(delta_path, contract=bad)
    import os

    assert not os.path.exists(delta_path)
    with pytest.raises(InvalidArgumentError, match='Unknown mode "ignore" in write_delta'):
        result.write_delta(delta_path, contract=bad, mode="ignore")


def test_write_with_audit_records_review_and_write(spark_classic: Any, tmp_path: Any,
                                                   delta_path: str) -> None:
    from cleanjoin.audit import AuditLog, content_hash

    spark = spark_classic
    log = AuditLog(str(tmp_path / "audit"), spark=spark)
    result = _real_result(spark)
    contract = OutputContract.from_result(result)
    version = result.write_delta(delta_path, contract=contract, audit=log)
    entries = log.entries(spark=spark)
    assert [e.action for e in entries] == ["contract_review", "delta_write"]
    meta = json.loads(_history(spark, delta_path)[version]["userMetadata"])
    assert meta["audit_head"] == entries[0].entry_hash
    write = json.dumps(dataclasses.asdict(entries[1]), default=str)
    assert content_hash(result.df) in write
    assert f'"version": {version}' in write


def test_review_of_a_real_dp_run_and_the_audit_head_of_its_commit(
    spark: Any, tmp_path: Any
) -> None:
    """The contract reviews the DP report of a real guarded run (not a hand-built one);
    the approved write records the audit head that ``head_from_commit`` reads back."""
    from cleanjoin._spark import functions_for
    from cleanjoin.audit import AuditLog, head_from_commit

    fn = functions_for(spark)
    left = spark.range(400).select(
        fn.sha2(fn.concat(fn.lit("person-"), fn.col("id").cast("string")), 256)
        .alias("card_number_token"),
        fn.when(fn.col("id") % 2 == 0, "a").otherwise("b").alias("segment"),
    )
    right = spark.range(400).select(
        fn.sha2(fn.concat(fn.lit("person-"), fn.col("id").cast("string")), 256)
        .alias("card_number_token"),
        (fn.col("id") % 3 == 0).cast("double").alias("f"),
    )
    audit = AuditLog(str(tmp_path / "audit"), spark=spark, actor="tests")
    result = (
        GuardedJoin(left, right, on="card_number_token")
        .group_by("segment")
        .agg(agg.count().alias("n"), agg.mean("f", bounds=(0, 1)).alias("rate"))
        .min_cohort(10)
        .with_dp(epsilon=2.0, public_groups=[("a",), ("b",)])
        .run(audit=audit)
    )
    dp = result.report.dp
    assert dp is not None
    assert dp["epsilon"] == pytest.approx(2.0)
    assert [a["name"] for a in dp["aggregates"]] == ["n", "rate"]
    no_dp = CONTRACT.review(result)
    assert no_dp.approved, no_dp.reasons
    dp_contract = dataclasses.replace(CONTRACT, dp_required=True)
    assert dp_contract.review(result).approved
    gold = str(tmp_path / "gold")
    assert head_from_commit(spark, str(tmp_path / "audit")) is None  # no audit_head there
    result.write_delta(gold, contract=dp_contract, audit=audit)
    head = head_from_commit(spark, gold)
    assert head is not None
    assert head in {e.entry_hash for e in audit.entries()}
    assert audit.verify(head=head).ok
    assert head_from_commit(spark, gold, version=0) == head
    assert head_from_commit(spark, gold, version=7) is None  # no such version
