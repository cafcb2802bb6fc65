"""Tests of cleanjoin.guard: the staged builder, cohort rules, explosion guard, filters, DP."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from datetime import datetime
from typing import Any

import pytest
from chispa import assert_df_equality

from cleanjoin import agg
from cleanjoin._spark import functions_for
from cleanjoin.consent import ConsentPolicy
from cleanjoin.errors import (
    ColumnNotFoundError,
    InvalidArgumentError,
    JoinExplosionError,
    NotAllowedError,
    SchemaMismatchError,
    UnsupportedColumnTypeError,
)
from cleanjoin.guard import (
    AggregatedJoin,
    GroupedJoin,
    GuardedJoin,
    GuardedResult,
    GuardReport,
    ReadyJoin,
)


def tok(i: int) -> str:
    """A fake 64-hex token for person ``i``."""
    return hashlib.sha256(f"person-{i}".encode()).hexdigest()


LEFT_SCHEMA = (
    "card_number_token string, email_token string, merchant_category_code string, "
    "txn_amount int, confirmed_fraud_flag int, sharing_consent_flag string"
)
RIGHT_SCHEMA = "card_number_token string, account_age_band string, chargeback_rate double"


def adversarial(spark: Any) -> tuple[Any, Any]:
    """Segment A: 1 person x 500 rows; B: exactly 100 people; C: 99 people x 2 rows;
    N: 150 rows with a null token on both sides (nulls must never join)."""
    left: list[tuple[Any, ...]] = []
    left += [(tok(0), None, "A", 10, 1, "CONSORTIUM_ELIGIBLE")] * 500
    left += [(tok(1000 + i), None, "B", 20, i % 2, "CONSORTIUM_ELIGIBLE") for i in range(100)]
    left += [(tok(2000 + i), None, "C", 30, 0, "CONSORTIUM_ELIGIBLE") for i in range(99)] * 2
    left += [(None, None, "N", 5, 1, "CONSORTIUM_ELIGIBLE")] * 150
    right = [(tok(0), "0-1y", 0.5)]
    right += [(tok(1000 + i), "0-1y", 0.1) for i in range(100)]
    right += [(tok(2000 + i), "0-1y", 0.2) for i in range(99)]
    right += [(None, "0-1y", 0.9)] * 150
    return spark.createDataFrame(left, LEFT_SCHEMA), spark.createDataFrame(right, RIGHT_SCHEMA)


def small(spark: Any) -> tuple[Any, Any]:
    left = [
        (tok(i), tok(100 + i), "M1" if i < 6 else "M2", i, i % 2, "CONSORTIUM_ELIGIBLE")
        for i in range(10)
    ]
    right = [(tok(i), "new" if i % 2 else "old", i / 10) for i in range(10)]
    return spark.createDataFrame(left, LEFT_SCHEMA), spark.createDataFrame(right, RIGHT_SCHEMA)


def rows(df: Any) -> list[dict[str, Any]]:
    return sorted((r.asDict() for r in df.collect()), key=lambda d: json.dumps(d, sort_keys=True))


# --------------------------------------------------------------------------- adversarial


def test_cohort_counts_distinct_people_not_rows(spark: Any) -> None:
    left, right = adversarial(spark)
    result = (
        GuardedJoin(left, right, on="card_number_token")
        .group_by("merchant_category_code")
        .agg(agg.count().alias("record_count"), agg.mean("confirmed_fraud_flag", bounds=(0, 1)))
        .min_cohort(100)
        .run()
    )
    assert isinstance(result, GuardedResult)
    got = rows(result.df)
    # A (1 person, 500 rows) and C (99 people, 198 rows) suppressed; B (exactly 100) released;
    # N (null tokens) never joined.
    assert [r["merchant_category_code"] for r in got] == ["B"]
    assert got[0]["record_count"] == 100
    assert got[0]["mean_confirmed_fraud_flag"] == pytest.approx(0.5)
    assert result.report.groups_released == 1
    assert result.report.groups_suppressed == 2
    assert result.report.rows_without_join_key == {"left": 150, "right": 150}
    assert result.df.columns == ["merchant_category_code", "record_count", "mean_confirmed_fraud_flag"]


def test_threshold_boundary_and_join_key_never_in_output(spark: Any) -> None:
    left, right = adversarial(spark)
    query = (
        GuardedJoin(left, right, on="card_number_token")
        .group_by("merchant_category_code", "account_age_band")
        .agg(agg.count().alias("n"))
    )
    at_99 = query.min_cohort(99).run()
    assert sorted(r["merchant_category_code"] for r in at_99.df.collect()) == ["B", "C"]
    at_101 = query.min_cohort(101).run()
    assert at_101.df.count() == 0
    assert at_101.report.groups_suppressed == 3
    for result in (at_99, at_101):
        assert "card_number_token" not in result.df.columns
        assert not any(c.endswith("_token") for c in result.df.columns)


def test_nulls_never_join_even_with_a_pair_of_key_columns(spark: Any) -> None:
    left, right = adversarial(spark)
    right = right.withColumnRenamed("card_number_token", "consumer_token")
    result = (
        GuardedJoin(left, right, on=("card_number_token", "consumer_token"))
        .group_by("merchant_category_code")
        .agg(agg.count())
        .min_cohort(1)
        .run()
    )
    assert sorted(r[0] for r in result.df.collect()) == ["A", "B", "C"]
    assert "consumer_token" not in result.df.columns


def test_privacy_unit_changes_what_is_counted(spark_classic: Any) -> None:
    # 3 cards per person: by card the group has 6 units, by person only 2
    left = spark_classic.createDataFrame(
        [(tok(i), f"p{i // 3}", "M") for i in range(6)],
        "card_number_token string, person_id string, mcc string",
    )
    right = spark_classic.createDataFrame(
        [(tok(i), 1) for i in range(6)], "card_number_token string, flag int"
    )
    query = GuardedJoin(left, right, on="card_number_token").group_by("mcc").agg(agg.count())
    assert query.min_cohort(3).run().report.groups_released == 1
    by_person = query.min_cohort(3).privacy_unit("person_id")
    assert by_person.run().report.groups_suppressed == 1
    assert by_person.run().report.privacy_unit == "person_id"
    with pytest.raises(NotAllowedError, match="also a group column"):
        query.privacy_unit("mcc")


def test_a_unit_finer_than_the_join_key_cannot_weaken_the_cohort(spark: Any) -> None:
    # one person, 150 transactions: by transaction id 150 "units", by card only 1
    left = spark.createDataFrame(
        [(tok(0), f"t{i}", "M") for i in range(150)]
        + [(tok(10 + i), f"u{i}", "N") for i in range(120)],
        "card_number_token string, txn_id string, mcc string",
    )
    right = spark.createDataFrame(
        [(tok(i), 1) for i in [0, *range(10, 130)]], "card_number_token string, flag int"
    )
    result = (
        GuardedJoin(left, right, on="card_number_token")
        .group_by("mcc")
        .agg(agg.count().alias("n"))
        .privacy_unit("txn_id")
        .min_cohort(100)
        .run()
    )
    assert [(r["mcc"], r["n"]) for r in result.df.collect()] == [("N", 120)]
    assert result.report.groups_suppressed == 1


def test_stages_built_directly_obey_the_builder_rules(spark_classic: Any) -> None:
    left, right = small(spark_classic)
    join = GuardedJoin(left, right, on="card_number_token")
    with pytest.raises(NotAllowedError, match=re.escape("grouping on the join column")):
        GroupedJoin(join, ("card_number_token",))
    with pytest.raises(NotAllowedError, match=re.escape("the token column 'email_token'")):
        AggregatedJoin(join, ("email_token",), (agg.count(),))
    ready = join.group_by("merchant_category_code").agg(agg.count()).min_cohort(5)
    with pytest.raises(NotAllowedError, match=re.escape("the token column 'EMAIL_TOKEN'")):
        dataclasses.replace(ready, group_columns=("EMAIL_TOKEN",))
    with pytest.raises(ColumnNotFoundError, match=re.escape("column 'nope' is in neither input")):
        dataclasses.replace(ready, unit="nope")
    with pytest.raises(NotAllowedError, match="also a group column"):
        dataclasses.replace(ready, unit="merchant_category_code")
    with pytest.raises(NotAllowedError, match=re.escape("only cleanjoin.agg aggregates are allowed")):
        dataclasses.replace(ready, aggregates=("max(txn_amount)",))
    with pytest.raises(InvalidArgumentError, match="needs a GuardedJoin"):
        ReadyJoin(left, ("merchant_category_code",), (agg.count(),), threshold=5)
    with pytest.raises(InvalidArgumentError, match="'n' must be an integer >= 1"):
        dataclasses.replace(ready, threshold=0)


def test_a_struct_holding_a_token_field_is_refused(spark_classic: Any) -> None:
    left, right = small(spark_classic)
    fn = functions_for(left)
    packed = left.withColumn(
        "details", fn.array(fn.struct(fn.col("email_token").alias("Email_Token"),
                                      fn.col("txn_amount").alias("amount")))
    )
    query = GuardedJoin(packed, right, on="card_number_token")
    with pytest.raises(NotAllowedError, match=re.escape("the token field(s) ['Email_Token']")):
        query.group_by("details")
    with pytest.raises(NotAllowedError, match=re.escape("the token field(s) ['Email_Token']")):
        query.group_by("merchant_category_code").agg(agg.count_distinct("details"))


def test_reserved_and_clashing_names_are_compared_without_case(spark_classic: Any) -> None:
    left, right = small(spark_classic)
    with pytest.raises(InvalidArgumentError, match=re.escape("reserved, found ['__CJ_KEY_HASH']")):
        GuardedJoin(left.withColumn("__CJ_KEY_HASH", left["txn_amount"]), right,
                    on="card_number_token")
    with pytest.raises(SchemaMismatchError, match="on both sides"):
        GuardedJoin(left, right.withColumnRenamed("account_age_band", "Merchant_Category_Code"),
                    on="card_number_token")


def test_aggregate_values_with_bounds(spark_classic: Any) -> None:
    left, right = small(spark_classic)
    result = (
        GuardedJoin(left, right, on="card_number_token")
        .group_by("merchant_category_code")
        .agg(
            agg.count().alias("n"),
            agg.count_distinct("account_age_band").alias("bands"),
            agg.sum("txn_amount", bounds=(0, 4)).alias("amount_sum"),
            agg.mean("txn_amount").alias("amount_mean"),
            agg.variance("chargeback_rate", bounds=(0, 1)).alias("cb_var"),
            agg.stddev("confirmed_fraud_flag").alias("fraud_sd"),
        )
        .min_cohort(4)
        .run()
    )
    got = {r["merchant_category_code"]: r.asDict() for r in result.df.collect()}
    m1 = got["M1"]  # people 0..5
    assert (m1["n"], m1["bands"]) == (6, 2)
    assert m1["amount_sum"] == pytest.approx(0 + 1 + 2 + 3 + 4 + 4)  # clamped at 4
    assert m1["amount_mean"] == pytest.approx(2.5)
    values = [i / 10 for i in range(6)]
    mean = sum(values) / 6
    assert m1["cb_var"] == pytest.approx(sum((v - mean) ** 2 for v in values) / 6)
    assert m1["fraud_sd"] == pytest.approx(0.5)
    assert got["M2"]["n"] == 4
    described = {a["name"]: a for a in result.report.aggregates}
    assert described["amount_sum"]["bounds"] == [0.0, 4.0]


# --------------------------------------------------------------------------- unit bitsets


def spread(spark: Any, cards: int = 3000) -> tuple[Any, Any]:
    """``cards`` people on 3 right-side partitions (ids in several blocks of 512 and
    several partition ranges); 1-4 left rows each in 4 segments, nulls in some measures,
    one amount column far from zero (a variance computed naively would lose it)."""
    left = []
    for i in range(cards):
        for j in range(1 + i % 4):
            amount = None if (i + j) % 7 == 0 else (i * 31 + j * 17) % 500
            left.append((tok(i), f"S{(i * 7 + j) % 4}", amount, (i + j) % 2 == 0,
                         1_000_000.0 + ((i * 13 + j) % 10) / 10))
    right = [(tok(i), f"band{i % 3}", (i % 11) / 10) for i in range(cards)]
    left_df = spark.createDataFrame(
        left, "card_number_token string, segment string, amount int, flagged boolean, level double"
    )
    right_df = spark.createDataFrame(right, RIGHT_SCHEMA).repartition(3)
    return left_df, right_df


def test_unit_bitsets_give_the_hashed_plans_answers(spark: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # the fast check proves the right side unique, so units are counted as bits of dense
    # ids; without the explosion guard the plan counts 64-bit hashes: same rows, same types
    from cleanjoin.guard import _plan as _guard_run

    calls: list[bool] = []
    real = _guard_run._bitset_grouped

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(True)
        return real(*args, **kwargs)

    monkeypatch.setattr(_guard_run, "_bitset_grouped", spy)
    left, right = spread(spark)
    aggregates = (
        agg.count().alias("n"),
        agg.sum("amount").alias("amount_sum"),
        agg.sum("amount", bounds=(0, 100)).alias("amount_sum_clamped"),
        agg.mean("amount").alias("amount_mean"),
        agg.mean("flagged").alias("flagged_rate"),
        agg.sum("flagged").alias("flagged_n"),
        agg.variance("level").alias("level_var"),
        agg.stddev("chargeback_rate", bounds=(0, 0.5)).alias("cb_sd"),
        agg.variance("amount").alias("amount_var"),
    )
    results = {}
    for limit in (10, None):
        query = (
            GuardedJoin(left, right, on="card_number_token", max_rows_per_key=limit)
            .group_by("segment", "account_age_band")
            .agg(*aggregates)
        )
        counts = {
            r["segment"] + r["account_age_band"]: r["people"]
            for r in left.join(right, "card_number_token").groupBy("segment", "account_age_band")
            .agg(functions_for(left).countDistinct("card_number_token").alias("people")).collect()
        }
        threshold = sorted(counts.values())[len(counts) // 2]  # a group exactly at it is released
        results[limit] = query.min_cohort(threshold).run()
        assert len(calls) == 1  # the bitsets ran for the guarded plan only
    fast, hashed = results[10], results[None]
    assert [(f.name, f.dataType) for f in fast.df.schema.fields] == [
        (f.name, f.dataType) for f in hashed.df.schema.fields
    ]
    key = ("segment", "account_age_band")
    got = {tuple(r[k] for k in key): r.asDict() for r in fast.df.collect()}
    want = {tuple(r[k] for k in key): r.asDict() for r in hashed.df.collect()}
    assert got.keys() == want.keys()
    assert 0 < len(got) < len(counts)
    for group, row in want.items():
        for name, value in row.items():
            if isinstance(value, float):
                assert got[group][name] == pytest.approx(value, rel=1e-9, abs=1e-12), name
            else:
                assert got[group][name] == value, name
    assert fast.report.groups_released == hashed.report.groups_released
    assert fast.report.groups_suppressed == hashed.report.groups_suppressed
    # the far-from-zero column keeps its small variance (values 1e6 + k/10, k in 0..9)
    assert all(0.05 < row["level_var"] < 0.1 for row in got.values())


def test_unit_bitsets_count_ids_across_words_blocks_and_partitions(spark_classic: Any) -> None:
    # ids as monotonically_increasing_id gives them: partition p starts at p << 33; ids at
    # word (64) and block (512) edges, repeated ids (one unit, many rows)
    from cleanjoin.guard import _plan as _guard_run

    left, right = small(spark_classic)
    query = (
        GuardedJoin(left, right, on="card_number_token")
        .group_by("merchant_category_code")
        .agg(agg.count().alias("n"), agg.sum("txn_amount").alias("total"))
        .min_cohort(1)
    )
    ids = {"A": [0, 63, 64, 511, 512, 513, 1023, 1024], "B": [(p << 33) + j for p in range(4) for j in (0, 1, 511)]}
    data = [(g, 1, i) for g, group_ids in ids.items() for i in group_ids]
    data += [("A", 2, 63), ("A", 3, 512), ("B", 4, (3 << 33) + 511)] * 3  # repeated units
    joined = spark_classic.createDataFrame(
        data, "merchant_category_code string, txn_amount int, __cj_unit_id long"
    )
    plan = _guard_run._Plan(joined, "card_number_token", "card_number_token", {}, None, True)
    got = {r[0]: r.asDict() for r in _guard_run._bitset_grouped(plan, query).collect()}
    for group, group_ids in ids.items():
        rows_in = [d for d in data if d[0] == group]
        assert got[group][_guard_run._UNITS] == len(set(group_ids))
        assert got[group]["n"] == len(rows_in)
        assert got[group]["total"] == sum(d[1] for d in rows_in)


def test_unit_bitsets_apply_only_where_they_are_exact(spark_classic: Any) -> None:
    from cleanjoin.guard import _join as _guard_run

    left, right = spread(spark_classic)
    left = left.withColumn("price", functions_for(left).col("amount").cast("decimal(10,2)"))
    join = GuardedJoin(left, right, on="card_number_token")
    grouped = join.group_by("segment")

    def ready(*aggregates: Any) -> Any:
        return grouped.agg(*aggregates).min_cohort(2)

    assert _guard_run.bitset_units(ready(agg.count(), agg.variance("level")))
    assert _guard_run.bitset_units(ready(agg.mean("price", bounds=(0, 10))))
    assert _guard_run.bitset_units(ready(agg.count()).privacy_unit("card_number_token"))
    # a decimal's sum and mean change type when summed twice; count_distinct does not merge
    assert not _guard_run.bitset_units(ready(agg.sum("price")))
    assert not _guard_run.bitset_units(ready(agg.count_distinct("account_age_band")))
    # another unit than the key, or DP (which bounds each unit's rows itself)
    assert not _guard_run.bitset_units(ready(agg.count()).privacy_unit("amount"))
    dp = ready(agg.count()).with_dp(epsilon=1.0, delta=1e-6)
    assert not _guard_run.bitset_units(dp)
    # a right side that repeats a key is re-run on the hashed plan, with the same answer
    doubled = right.unionByName(right.limit(5))
    query = GuardedJoin(left, doubled, on="card_number_token", max_rows_per_key=4)
    twice = query.group_by("segment").agg(agg.count().alias("n")).min_cohort(2).run()
    fn = functions_for(left)
    want = left.join(doubled, "card_number_token").groupBy("segment").agg(fn.count("*").alias("n"))
    assert rows(twice.df) == rows(want)


# --------------------------------------------------------------------------- refusals


def test_min_and_max_are_refused() -> None:
    for name in ("min", "max", "median", "percentile_approx", "first", "collect_list",
                 "percentile_cont", "max_by", "array_agg", "string_agg", "kurtosis"):
        with pytest.raises(NotAllowedError, match=re.escape(f"agg.{name} is not allowed")):
            getattr(agg, name)("txn_amount")
    from cleanjoin.agg import Aggregate

    with pytest.raises(NotAllowedError, match=re.escape('Aggregate "max" is not allowed')):
        Aggregate("max", "txn_amount")  # type: ignore[arg-type]
    assert Aggregate("mean", "txn_amount").kind is agg.AggKind.MEAN  # type: ignore[arg-type]
    with pytest.raises(AttributeError, match="has no attribute 'no_such_thing'"):
        agg.no_such_thing  # noqa: B018


def test_grouping_or_aggregating_tokens_is_refused(spark_classic: Any) -> None:
    left, right = small(spark_classic)
    join = GuardedJoin(left, right, on="card_number_token")
    for column in ("card_number_token", "email_token"):
        with pytest.raises(NotAllowedError, match=re.escape(f"{column!r} is not allowed")):
            join.group_by(column)
    grouped = join.group_by("merchant_category_code")
    with pytest.raises(NotAllowedError, match=re.escape("join column 'card_number_token'")):
        grouped.agg(agg.count_distinct("card_number_token"))
    with pytest.raises(NotAllowedError, match=re.escape("token column 'email_token'")):
        grouped.agg(agg.count_distinct("email_token"))
    with pytest.raises(NotAllowedError, match="raw Column and SQL string expressions"):
        grouped.agg(left["txn_amount"])
    with pytest.raises(NotAllowedError, match="raw Column and SQL string expressions"):
        grouped.agg("max(txn_amount)")  # type: ignore[arg-type]
    with pytest.raises(NotAllowedError, match="Column expressions bypass the guard"):
        join.group_by(left["merchant_category_code"])  # type: ignore[arg-type]
    with pytest.raises(NotAllowedError, match="cannot look like tokens"):
        grouped.agg(agg.count().alias("n_token"))
    with pytest.raises(UnsupportedColumnTypeError, match=re.escape("agg.mean('account_age_band')")):
        grouped.agg(agg.mean("account_age_band"))
    with pytest.raises(ColumnNotFoundError, match="'nope' is in neither input"):
        join.group_by("nope")
    with pytest.raises(InvalidArgumentError, match="used twice"):
        grouped.agg(agg.count(), agg.count())


def test_input_validation(spark_classic: Any) -> None:
    left, right = small(spark_classic)
    with pytest.raises(SchemaMismatchError, match=re.escape("columns ['txn_amount'] are on both sides")):
        GuardedJoin(left, right.withColumn("txn_amount", right["chargeback_rate"]),
                    on="card_number_token")
    with pytest.raises(ColumnNotFoundError, match="join column 'x_token' is not in the left"):
        GuardedJoin(left, right, on="x_token")
    with pytest.raises(InvalidArgumentError, match="'max_rows_per_key' in GuardedJoin"):
        GuardedJoin(left, right, on="card_number_token", max_rows_per_key=0)
    with pytest.raises(InvalidArgumentError, match="'left' in GuardedJoin must be a DataFrame"):
        GuardedJoin([1], right, on="card_number_token")
    with pytest.raises(ColumnNotFoundError, match="consent policy for the right side"):
        GuardedJoin(left, right, on="card_number_token", consent=ConsentPolicy(side="right"))
    with pytest.raises(InvalidArgumentError, match="at least one column"):
        GuardedJoin(left, right, on="card_number_token").group_by()
    with pytest.raises(InvalidArgumentError, match="min_cohort\\(\\): 'n' must be an integer >= 1"):
        GuardedJoin(left, right, on="card_number_token").group_by("merchant_category_code").agg(
            agg.count()).min_cohort(0)


def test_builder_is_staged_and_immutable(spark_classic: Any) -> None:
    left, right = small(spark_classic)
    join = GuardedJoin(left, right, on="card_number_token")
    grouped = join.group_by("merchant_category_code")
    aggregated = grouped.agg(agg.count())
    ready = aggregated.min_cohort(5)
    assert isinstance(grouped, GroupedJoin)
    assert isinstance(aggregated, AggregatedJoin)
    assert isinstance(ready, ReadyJoin)
    assert not hasattr(join, "run")
    assert not hasattr(grouped, "run")
    assert not hasattr(aggregated, "run")
    assert not hasattr(grouped, "min_cohort")
    for obj in (join, grouped, aggregated, ready):
        with pytest.raises(dataclasses.FrozenInstanceError):
            obj.join = None  # type: ignore[misc,union-attr]
    other = ready.min_cohort(50).privacy_unit("email_token")
    assert (ready.threshold, ready.unit) == (5, None)
    assert (other.threshold, other.unit) == (50, "email_token")
    assert aggregated.privacy_unit("email_token") is not aggregated
    assert ready.fingerprint() != other.fingerprint()
    assert ready.fingerprint() == aggregated.min_cohort(5).fingerprint()


# --------------------------------------------------------------------------- explosion


def test_join_explosion_guard_names_side_and_limit(spark: Any) -> None:
    left, right = small(spark)
    hot = tok(3)
    left = left.unionByName(
        spark.createDataFrame([(hot, None, "M1", 1, 0, "CONSORTIUM_ELIGIBLE")] * 11, LEFT_SCHEMA)
    )
    query = (
        GuardedJoin(left, right, on="card_number_token", max_rows_per_key=10)
        .group_by("merchant_category_code")
        .agg(agg.count())
        .min_cohort(1)
    )
    with pytest.raises(JoinExplosionError, match=re.escape("the left DataFrame (first argument")) as info:
        query.run()
    assert "max_rows_per_key=10" in str(info.value)
    assert hot not in str(info.value)
    assert info.value.__cause__ is None


def test_left_explosion_caught_both_ways(spark: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # right side with one row per key: the left bound is observed in the query's own scan
    # and the error comes after it ran; right side with a repeated key (within the limit):
    # the query re-runs with both sides checked in the plan, before the join
    from cleanjoin.guard import _execute as _guard_run

    left, right = small(spark)
    fn = functions_for(left)
    first = fn.col("card_number_token") == tok(0)
    hot = left.filter(first)
    left3 = left.unionByName(hot).unionByName(hot).unionByName(hot)  # tok(0) has 4 rows
    repeated = right.unionByName(right.filter(first))  # tok(0) has 2 rows
    modes: list[str | None] = []
    real = _guard_run.build_plan

    def spy(*args: Any, **kwargs: Any) -> Any:
        modes.append(kwargs.get("mode"))
        return real(*args, **kwargs)

    monkeypatch.setattr(_guard_run, "build_plan", spy)
    for r, expected in ((right, ["fast"]), (repeated, ["fast", "bucket", "exact"])):
        modes.clear()
        query = GuardedJoin(left3, r, on="card_number_token", max_rows_per_key=3)
        with pytest.raises(JoinExplosionError, match=re.escape("the left DataFrame")):
            query.group_by("merchant_category_code").agg(agg.count()).min_cohort(1).run()
        assert modes == expected
        ok = GuardedJoin(left3, r, on="card_number_token", max_rows_per_key=4)
        result = ok.group_by("merchant_category_code").agg(agg.count()).min_cohort(1).run()
        assert {row[0]: row[1] for row in result.df.collect()}["M1"] == (9 if r is right else 13)


def test_sketch_bound_reads_spark_sketches(spark_classic: Any) -> None:
    from cleanjoin.guard._explosion import _sketch_bound

    df = spark_classic.createDataFrame([("a",)] * 5 + [("b",)] * 3 + [("c",)], "k string")
    fn = functions_for(df)
    for eps, confidence in ((0.5, 0.5), (2.0 / 65536, 0.5), (0.01, 0.9)):
        sketch = df.agg(fn.count_min_sketch("k", fn.lit(eps), fn.lit(confidence), fn.lit(7))).first()[0]
        assert 5 <= _sketch_bound(bytes(sketch)) <= 9
    wide = df.agg(fn.count_min_sketch("k", fn.lit(2.0 / 65536), fn.lit(0.9), fn.lit(7))).first()[0]
    assert _sketch_bound(bytes(wide)) == 5  # 3 keys in 65,536 buckets x 4 rows: no shared cell in some row


def test_join_explosion_guard_right_side_and_disabled(spark_classic: Any) -> None:
    left, right = small(spark_classic)
    right = right.unionByName(spark_classic.createDataFrame([(tok(1), "old", 0.0)] * 3, RIGHT_SCHEMA))
    base = dict(on="card_number_token", max_rows_per_key=3)
    query = GuardedJoin(left, right, **base).group_by("merchant_category_code").agg(agg.count())
    with pytest.raises(JoinExplosionError, match=re.escape("the right DataFrame")):
        query.min_cohort(1).run()
    unguarded = GuardedJoin(left, right, on="card_number_token", max_rows_per_key=None)
    result = unguarded.group_by("merchant_category_code").agg(agg.count()).min_cohort(1).run()
    assert {r[0]: r[1] for r in result.df.collect()} == {"M1": 9, "M2": 4}
    assert result.report.max_rows_per_key is None


def test_right_side_rows_per_key_are_checked_in_the_first_attempt(
    spark: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the right side's window count decides at once: over the limit is the error (no
    # re-run); a repeated key within the limit re-runs with both sides checked first
    from cleanjoin.guard import _execute as _guard_run

    left, right = small(spark)
    fn = functions_for(left)
    one = right.filter(fn.col("card_number_token") == tok(1))
    modes: list[str | None] = []
    real = _guard_run.build_plan

    def spy(*args: Any, **kwargs: Any) -> Any:
        modes.append(kwargs.get("mode"))
        return real(*args, **kwargs)

    monkeypatch.setattr(_guard_run, "build_plan", spy)
    hot = right.unionByName(one).unionByName(one).unionByName(one)  # tok(1): 4 rows
    query = GuardedJoin(left, hot, on="card_number_token", max_rows_per_key=3)
    with pytest.raises(JoinExplosionError, match=re.escape("the right DataFrame")) as info:
        query.group_by("merchant_category_code").agg(agg.count()).min_cohort(1).run()
    assert modes == ["fast"]
    assert "max_rows_per_key=3" in str(info.value)
    assert tok(1) not in str(info.value)
    modes.clear()
    ok = GuardedJoin(left, hot, on="card_number_token", max_rows_per_key=4)
    result = ok.group_by("merchant_category_code").agg(agg.count()).min_cohort(1).run()
    assert modes == ["fast", "bucket"]
    assert {r[0]: r[1] for r in result.df.collect()} == {"M1": 9, "M2": 4}  # tok(1) joins 4 times


def test_right_side_check_under_a_sort_merge_join(
    spark_classic: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # with broadcasting off, the right side's window shares the join's shuffle: the same
    # answers as with a broadcast right side
    left, right = small(spark_classic)
    fn = functions_for(left)
    one = right.filter(fn.col("card_number_token") == tok(1))
    hot = right.unionByName(one).unionByName(one)  # tok(1): 3 rows
    conf = spark_classic.conf
    before = conf.get("spark.sql.autoBroadcastJoinThreshold")
    conf.set("spark.sql.autoBroadcastJoinThreshold", "-1")
    try:
        from cleanjoin.guard import _join as _guard_run

        over = GuardedJoin(left, hot, on="card_number_token", max_rows_per_key=2)
        ready = over.group_by("merchant_category_code").agg(agg.count()).min_cohort(1)
        _guard_run.build_plan(ready, None, mode="fast").joined.explain()
        plan = capsys.readouterr().out
        assert "SortMergeJoin" in plan
        assert "Window" in plan
        assert "Broadcast" not in plan
        with pytest.raises(JoinExplosionError, match=re.escape("the right DataFrame")):
            over.group_by("merchant_category_code").agg(agg.count()).min_cohort(1).run()
        within = GuardedJoin(left, right, on="card_number_token", max_rows_per_key=2)
        result = within.group_by("merchant_category_code").agg(agg.count()).min_cohort(1).run()
        assert {r[0]: r[1] for r in result.df.collect()} == {"M1": 6, "M2": 4}
    finally:
        conf.set("spark.sql.autoBroadcastJoinThreshold", before)


def test_explosion_bound_exceeded_falls_back_to_the_exact_check(
    spark: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # one bucket: the bound (10 rows) exceeds the limit although no key has 2 rows, so the
    # query must be re-run with the exact check and succeed
    from cleanjoin.guard import _explosion as _guard_run

    monkeypatch.setattr(_guard_run, "_BUCKETS", 1)
    left, right = small(spark)
    query = GuardedJoin(left, right, on="card_number_token", max_rows_per_key=1)
    result = query.group_by("merchant_category_code").agg(agg.count()).min_cohort(1).run()
    assert {r[0]: r[1] for r in result.df.collect()} == {"M1": 6, "M2": 4}
    assert result.report.rows_without_join_key == {"left": 0, "right": 0}
    # and a key that really has 2 rows still fails, on the exact tier
    doubled = left.unionByName(left.limit(1))
    again = GuardedJoin(doubled, right, on="card_number_token", max_rows_per_key=1)
    with pytest.raises(JoinExplosionError, match=re.escape("the left DataFrame")):
        again.group_by("merchant_category_code").agg(agg.count()).min_cohort(1).run()


# --------------------------------------------------------------------------- consent / revocation


def _revocations(spark: Any, tokens: list[str]) -> Any:
    from cleanjoin.revocation import revocation_schema

    now = datetime(2026, 11, 1)
    return spark.createDataFrame([(t, now, "OPT_OUT", "test") for t in tokens], revocation_schema())


def test_consent_and_revocation_are_applied_and_counted(spark: Any) -> None:
    left, right = small(spark)
    F = functions_for(left)
    # person 0 and 1 did not consent; person 2 and 3 revoked; a revoked token absent from data
    left = left.withColumn(
        "sharing_consent_flag",
        F.when(F.col("txn_amount") < 2, F.lit("NONE")).otherwise(F.col("sharing_consent_flag")),
    )
    revoked = _revocations(spark, [tok(2), tok(3), tok(999)])
    result = (
        GuardedJoin(left, right, on="card_number_token", consent=[ConsentPolicy(side="left")],
                    revoked=revoked)
        .group_by("merchant_category_code")
        .agg(agg.count().alias("n"))
        .min_cohort(1)
        .run()
    )
    assert {r["merchant_category_code"]: r["n"] for r in result.df.collect()} == {"M1": 2, "M2": 4}
    report = result.report
    assert report.rows_excluded_by_consent == {"left": 2}
    assert report.rows_excluded_by_revocation == {"left": 2, "right": 2}
    assert report.revoked_tokens_applied == 3
    text = str(report)
    assert "excluded by consent : left 2" in text
    assert tok(2) not in text
    assert tok(2) not in json.dumps(report.to_dict())


# --------------------------------------------------------------------------- report / audit


def test_report_is_frozen_and_readable(spark_classic: Any) -> None:
    left, right = adversarial(spark_classic)
    result = (
        GuardedJoin(left, right, on="card_number_token")
        .group_by("merchant_category_code")
        .agg(agg.count().alias("n"), agg.mean("txn_amount", bounds=(0, 50)).alias("avg_amount"))
        .min_cohort(100)
        .run(release_id="weekly-1")
    )
    report = result.report
    assert isinstance(report, GuardReport)
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.groups_released = 5  # type: ignore[misc]
    data = report.to_dict()
    json.dumps(data)
    assert data["groups_suppressed"] == 2
    assert data["release_id"] == "weekly-1"
    assert result.run_id == report.run_id
    assert result.release_id == "weekly-1"
    text = str(report)
    for expected in (
        "groups released     : 1",
        "groups suppressed   : 2 (fewer than 100 distinct card_number_token)",
        "min cohort          : 100 distinct privacy units",
        "avg_amount = mean(txn_amount), bounds [0.0, 50.0]",
        "differential privacy: no",
    ):
        assert expected in text
    assert tok(0) not in text


def test_run_appends_an_audit_entry(spark_classic: Any, tmp_path: Any) -> None:
    from cleanjoin.audit import AuditLog, content_hash

    left, right = small(spark_classic)
    log = AuditLog(str(tmp_path / "audit"), spark=spark_classic)
    result = (
        GuardedJoin(left, right, on="card_number_token")
        .group_by("merchant_category_code")
        .agg(agg.count().alias("n"))
        .min_cohort(3)
        .run(audit=log)
    )
    entries = log.entries(spark=spark_classic)
    assert [e.action for e in entries] == ["guarded_run"]
    entry = entries[0].to_dict() if hasattr(entries[0], "to_dict") else dataclasses.asdict(entries[0])
    dumped = json.dumps(entry, default=str)
    assert result.run_id in dumped
    assert content_hash(result.df) in dumped
    assert tok(1) not in dumped


# --------------------------------------------------------------------------- DP and budget


def test_budget_rules(spark_classic: Any, tmp_path: Any) -> None:
    from cleanjoin.budget import BudgetLedger

    left, right = small(spark_classic)
    ledger = BudgetLedger(str(tmp_path / "ledger"), collaboration="c", total_epsilon=1.0,
                          total_delta=1e-5)
    ready = (
        GuardedJoin(left, right, on="card_number_token")
        .group_by("merchant_category_code")
        .agg(agg.count().alias("n"))
        .min_cohort(2)
    )
    # a threshold run with a ledger is a recorded threshold release: ε = 0, nothing spent
    recorded = ready.run(budget=ledger, release_id="r1")
    assert recorded.report.groups_suppressed_refinement == 0
    assert [r.release_id for r in ledger.threshold_releases(spark=spark_classic)] == ["r1"]
    assert ledger.remaining(spark=spark_classic) == (1.0, 1e-5)
    with pytest.raises(InvalidArgumentError, match="'budget' needs a 'release_id'"):
        ready.run(budget=ledger)
    with pytest.raises(InvalidArgumentError, match="'budget' needs a 'release_id'"):
        ready.with_dp(epsilon=0.5, delta=1e-6).run(budget=ledger)


def test_dp_run_charges_once_and_replays(spark_classic: Any, tmp_path: Any) -> None:
    from cleanjoin.budget import BudgetLedger
    from cleanjoin.errors import BudgetExceeded

    left, right = small(spark_classic)
    ledger = BudgetLedger(str(tmp_path / "ledger"), collaboration="c", total_epsilon=1.0,
                          total_delta=1e-5)
    dp = (
        GuardedJoin(left, right, on="card_number_token")
        .group_by("merchant_category_code")
        .agg(agg.count().alias("n"), agg.mean("confirmed_fraud_flag", bounds=(0, 1)).alias("rate"))
        .with_dp(epsilon=0.6, delta=1e-6, public_groups=[("M1",), ("M2",)])
        .min_cohort(2)
    )
    first = dp.run(budget=ledger, release_id="week-1")
    assert first.report.dp_used
    assert first.report.budget_charged == {"epsilon": 0.6, "delta": 1e-6}
    assert first.report.dp is not None
    assert first.report.dp["epsilon"] == 0.6
    assert "differential privacy: ε=0.6" in str(first.report)
    assert sorted(first.df.columns) == ["merchant_category_code", "n", "rate"]
    remaining = ledger.remaining(spark=spark_classic)
    again = dp.run(budget=ledger, release_id="week-1")
    assert again.report.replayed
    assert again.report.budget_charged is None
    assert ledger.remaining(spark=spark_classic) == remaining
    assert_df_equality(first.df, again.df, ignore_row_order=True, ignore_nullable=True)
    with pytest.raises(BudgetExceeded):
        dp.run(budget=ledger, release_id="week-2")
    with pytest.raises(InvalidArgumentError, match="already spent on a different query"):
        dp.min_cohort(3).run(budget=ledger, release_id="week-1")
