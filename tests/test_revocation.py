"""Tests of cleanjoin.revocation: validation, Gold MERGE, streaming exactly-once, purge."""

from __future__ import annotations

import hashlib
import json
import pickle
import re
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from cleanjoin.errors import (
    ColumnNotFoundError,
    InvalidArgumentError,
    RevocationInputError,
    SchemaMismatchError,
)
from cleanjoin.revocation import (
    REVOCATION_COLUMNS,
    RevocationBatchWriter,
    RevocationMode,
    RevocationResult,
    apply_revocations,
    load_revocations,
    purge,
    revocation_schema,
    revocations_from_tokens,
    start_revocation_stream,
)

WHEN = datetime(2026, 11, 1, 12, 0, 0)
GOLD_SCHEMA = "card_number_token string, merchant_category_code string, sharing_consent_flag string, amount int"


def tok(i: int) -> str:
    return hashlib.sha256(f"card-{i}".encode()).hexdigest()


def revocation_rows(ids: list[int], *, reason: str = "OPT_OUT") -> list[tuple[Any, ...]]:
    return [(tok(i), WHEN, reason, "issuer-portal") for i in ids]


def revocation_df(spark: Any, ids: list[int]) -> Any:
    return spark.createDataFrame(revocation_rows(ids), revocation_schema())


def make_gold(
    spark: Any, path: str, *, cards: int = 8, rows_per_card: int = 2, dv: bool = False
) -> None:
    rows = [
        (tok(c), f"mcc{r}", "CONSORTIUM_ELIGIBLE", c * 10 + r)
        for c in range(cards)
        for r in range(rows_per_card)
    ]
    writer = spark.createDataFrame(rows, GOLD_SCHEMA).coalesce(1).write.format("delta")
    if dv:
        writer = writer.option("delta.enableDeletionVectors", "true")
    writer.save(path)


def gold_cards(spark: Any, path: str, **options: Any) -> set[str]:
    reader = spark.read.format("delta")
    for key, value in options.items():
        reader = reader.option(key, value)
    return {row[0] for row in reader.load(path).select("card_number_token").collect()}


def version(spark: Any, path: str) -> int:
    return int(spark.sql(f"DESCRIBE HISTORY delta.`{path}` LIMIT 1").collect()[0]["version"])


# ---------------------------------------------------------------- pure


def test_public_values() -> None:
    assert REVOCATION_COLUMNS == ("token", "revoked_at", "reason_code", "source")
    assert revocation_schema().fieldNames() == list(REVOCATION_COLUMNS)
    assert RevocationMode.parse("Delete") is RevocationMode.DELETE
    with pytest.raises(InvalidArgumentError, match=re.escape('Unknown revocation mode "drop"')):
        RevocationMode.parse("drop")
    result = RevocationResult(table="/t", mode="delete", batch_rows=3, distinct_tokens=2)
    assert not result.committed
    assert json.loads(json.dumps(result.to_dict()))["distinct_tokens"] == 2


def test_batch_writer_is_picklable_and_validated() -> None:
    writer = RevocationBatchWriter(gold="/g", checkpoint="/c", token_column="t", app_id="app")
    assert pickle.loads(pickle.dumps(writer)) == writer
    with pytest.raises(
        InvalidArgumentError, match=re.escape("'token_column' in RevocationBatchWriter")
    ):
        RevocationBatchWriter(gold="/g", checkpoint="/c", token_column="")


# ---------------------------------------------------------------- load_revocations


def test_load_revocations_dedups_to_one_column(spark: Any) -> None:
    df = revocation_df(spark, [1, 2, 2, 3, 1])
    tokens = load_revocations(df)
    assert tokens.columns == ["token"]
    assert sorted(r[0] for r in tokens.collect()) == sorted({tok(1), tok(2), tok(3)})


@pytest.mark.parametrize(
    ("schema", "rows", "message"),
    [
        (
            "token string, revoked_at timestamp, source string",
            [(tok(1), WHEN, "s")],
            "missing column(s) 'reason_code'",
        ),
        (
            "token binary, revoked_at timestamp, reason_code string, source string",
            [(b"x", WHEN, "r", "s")],
            "wrong type(s): 'token' is binary (expected string)",
        ),
        (
            "token string, revoked_at string, reason_code string, source string",
            [(tok(1), "2026-01-01", "r", "s")],
            "'revoked_at' is string (expected timestamp or timestamp_ntz)",
        ),
        (
            "token string, revoked_at timestamp, reason_code string, source string",
            [(None, WHEN, "r", "s"), (tok(1), WHEN, "r", "s"), (None, WHEN, "r", "s")],
            "2 of 3 revocation rows have a null token",
        ),
    ],
)
def test_load_revocations_rejects_bad_input(
    spark_classic: Any, schema: str, rows: list[Any], message: str
) -> None:
    df = spark_classic.createDataFrame(rows, schema)
    with pytest.raises(RevocationInputError, match=re.escape(message)):
        load_revocations(df)


def test_malformed_tokens_are_counted_not_shown(spark: Any) -> None:
    raw = "4111111111111111"
    df = spark.createDataFrame(
        [(raw, WHEN, "r", "s"), (tok(1).upper(), WHEN, "r", "s"), (tok(2), WHEN, "r", "s")],
        revocation_schema(),
    )
    with pytest.raises(
        RevocationInputError, match=re.escape("2 of 3 revocation tokens are not cleanjoin tokens")
    ) as info:
        load_revocations(df)
    assert raw not in str(info.value)
    assert tok(1).upper() not in str(info.value)


def test_load_revocations_from_delta_path(spark_classic: Any, tmp_path: Path) -> None:
    path = str(tmp_path / "revocations")
    revocation_df(spark_classic, [4, 4, 5]).write.format("delta").save(path)
    tokens = load_revocations(path, spark=spark_classic)
    assert sorted(r[0] for r in tokens.collect()) == sorted([tok(4), tok(5)])
    with pytest.raises(RevocationInputError, match=re.escape("no readable Delta revocation table")):
        load_revocations(str(tmp_path / "absent"), spark=spark_classic)


def test_revocations_from_tokens(spark_classic: Any) -> None:
    optouts = spark_classic.createDataFrame(
        [(tok(1), "x"), (tok(2), "y")], "card_token string, other string"
    )
    built = revocations_from_tokens(
        optouts,
        token_column="card_token",
        reason_code="OPT_OUT",
        source="issuer-portal",
        revoked_at=WHEN,
    )
    assert built.schema.simpleString() == revocation_schema().simpleString()
    assert {tuple(r) for r in built.collect()} == {
        (tok(1), WHEN, "OPT_OUT", "issuer-portal"),
        (tok(2), WHEN, "OPT_OUT", "issuer-portal"),
    }
    now = revocations_from_tokens(
        optouts, token_column="card_token", reason_code="OPT_OUT", source="s"
    )
    assert now.where(now.revoked_at.isNull()).count() == 0
    with pytest.raises(
        ColumnNotFoundError, match=re.escape("column 'card_number_token' not found")
    ):
        revocations_from_tokens(
            optouts, token_column="card_number_token", reason_code="r", source="s"
        )
    with pytest.raises(
        InvalidArgumentError, match=re.escape("'reason_code' in revocations_from_tokens")
    ):
        revocations_from_tokens(optouts, token_column="card_token", reason_code="", source="s")


# ---------------------------------------------------------------- apply_revocations


def test_apply_deletes_with_duplicates(spark: Any, delta_path: str) -> None:
    make_gold(spark, delta_path)
    result = apply_revocations(
        delta_path, revocation_df(spark, [1, 1, 2, 99]), token_column="card_number_token"
    )
    assert (result.batch_rows, result.distinct_tokens, result.rows_deleted) == (4, 3, 4)
    assert (result.version_before, result.version, result.replayed) == (0, 1, False)
    assert result.attempts == 1
    assert gold_cards(spark, delta_path) == {tok(c) for c in range(8)} - {tok(1), tok(2)}

    # the same batch again: nothing matches, so nothing is committed
    again = apply_revocations(
        delta_path, revocation_df(spark, [1, 2]), token_column="card_number_token"
    )
    assert (again.rows_deleted, again.version, again.version_before) == (0, None, 1)
    assert version(spark, delta_path) == 1


def test_batches_and_purges_are_audited(
    spark_classic: Any, delta_path: str, tmp_path: Path
) -> None:
    from cleanjoin.audit import AuditLog

    spark = spark_classic
    make_gold(spark, delta_path)
    audit = AuditLog(str(tmp_path / "audit"), actor="tester")
    apply_revocations(
        delta_path, revocation_df(spark, [1, 1, 2]), token_column="card_number_token", audit=audit
    )
    purged = purge(delta_path, retention_hours=0, audit=audit, spark=spark)
    assert not purged.reorg  # no deletion vectors on this table
    entries = audit.entries(spark=spark)
    assert [e.action for e in entries] == ["revocation_batch", "purge"]
    batch = entries[0].parameters
    assert (batch["rows_deleted"], batch["distinct_tokens"], batch["batch_rows"]) == (4, 2, 3)
    assert (batch["version_before"], batch["version"], batch["batch_id"]) == (0, 1, None)
    assert entries[0].output == {"path": delta_path, "version": 1}
    assert entries[1].parameters["retention_hours"] == 0.0
    assert entries[1].output == {"path": delta_path, "version": purged.version_after}
    text = json.dumps([e.to_dict() for e in entries])
    assert tok(1) not in text
    assert tok(2) not in text


def test_bad_input_changes_nothing(spark: Any, delta_path: str) -> None:
    make_gold(spark, delta_path)
    nulls = spark.createDataFrame(
        [(None, WHEN, "r", "s"), (tok(1), WHEN, "r", "s")], revocation_schema()
    )
    with pytest.raises(
        RevocationInputError, match=re.escape("1 of 2 revocation rows have a null token")
    ):
        apply_revocations(delta_path, nulls, token_column="card_number_token")
    wrong = spark.createDataFrame([(tok(1), "r")], "token string, reason_code string")
    with pytest.raises(
        RevocationInputError, match=re.escape("missing column(s) 'revoked_at', 'source'")
    ):
        apply_revocations(delta_path, wrong, token_column="card_number_token")
    with pytest.raises(
        ColumnNotFoundError, match=re.escape("column 'card_token' not found in the Gold table")
    ):
        apply_revocations(delta_path, revocation_df(spark, [1]), token_column="card_token")
    assert version(spark, delta_path) == 0
    assert len(gold_cards(spark, delta_path)) == 8


def test_apply_flag_mode_and_delta_table(spark_classic: Any, delta_path: str) -> None:
    from delta.tables import DeltaTable

    make_gold(spark_classic, delta_path)
    table = DeltaTable.forPath(spark_classic, delta_path)
    result = apply_revocations(
        table, revocation_df(spark_classic, [3, 3]), token_column="card_number_token", mode="flag"
    )
    assert (result.rows_flagged, result.rows_deleted, result.version) == (2, 0, 1)
    flags = {
        (r[0], r[1])
        for r in spark_classic.read.format("delta")
        .load(delta_path)
        .select("card_number_token", "sharing_consent_flag")
        .distinct()
        .collect()
    }
    assert (tok(3), "REVOKED") in flags
    assert (tok(4), "CONSORTIUM_ELIGIBLE") in flags
    assert len(flags) == 8
    # already flagged rows are not rewritten
    again = apply_revocations(
        delta_path, revocation_df(spark_classic, [3]), token_column="card_number_token", mode="flag"
    )
    assert (again.rows_flagged, again.version) == (0, None)
    with pytest.raises(
        SchemaMismatchError,
        match=re.escape("Gold column 'sharing_consent_flag' is string, but 'flag_value' is a bool"),
    ):
        apply_revocations(
            delta_path,
            revocation_df(spark_classic, [4]),
            token_column="card_number_token",
            mode="flag",
            flag_value=True,
        )
    assert version(spark_classic, delta_path) == 1


def test_empty_batch_commits_nothing(spark_classic: Any, delta_path: str) -> None:
    make_gold(spark_classic, delta_path)
    result = apply_revocations(
        delta_path, revocation_df(spark_classic, []), token_column="card_number_token"
    )
    assert (result.batch_rows, result.version, result.version_before) == (0, None, 0)


def test_two_concurrent_writers_end_in_the_correct_state(
    spark_classic: Any, delta_path: str
) -> None:
    make_gold(spark_classic, delta_path, cards=12, rows_per_card=1)
    other = spark_classic.newSession()  # a second writer: its own session, like another job
    batches = {0: [[0, 1], [2, 3], [4, 5]], 1: [[6, 7], [8, 9], [1, 10]]}
    results: dict[int, list[RevocationResult]] = {0: [], 1: []}
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def writer(n: int, session: Any) -> None:
        try:
            start.wait()
            for ids in batches[n]:
                results[n].append(
                    apply_revocations(
                        delta_path,
                        revocation_df(session, ids),
                        token_column="card_number_token",
                        backoff_seconds=0.2,
                        max_attempts=10,
                    )
                )
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=writer, args=(0, spark_classic)),
        threading.Thread(target=writer, args=(1, other)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert gold_cards(spark_classic, delta_path) == {tok(11)}
    all_results = results[0] + results[1]
    assert sum(r.rows_deleted for r in all_results) == 11
    versions = [r.version for r in all_results if r.version is not None]
    assert len(versions) == len(set(versions))  # every commit is reported once
    assert version(spark_classic, delta_path) == len(versions)


# ---------------------------------------------------------------- streaming


def _write_json(folder: Path, name: str, ids: list[int]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps(
            {
                "token": tok(i),
                "revoked_at": WHEN.isoformat(),
                "reason_code": "OPT_OUT",
                "source": "stream",
            }
        )
        for i in ids
    ]
    (folder / name).write_text("\n".join(lines) + "\n")


def test_stream_applies_each_batch_once(spark: Any, delta_path: str, tmp_path: Path) -> None:
    from cleanjoin.audit import AuditLog

    make_gold(spark, delta_path)
    inbox = tmp_path / "inbox"
    checkpoint = str(tmp_path / "checkpoint")
    audit = AuditLog(str(tmp_path / "audit"), actor="tester")
    _write_json(inbox, "a.json", [1, 2, 2])

    def run() -> Any:
        source = (
            spark.readStream.schema(revocation_schema())
            .option("maxFilesPerTrigger", 1)
            .json(str(inbox))
        )
        query = start_revocation_stream(
            source,
            delta_path,
            checkpoint,
            token_column="card_number_token",
            trigger={"availableNow": True},
            audit=audit,
        )
        finished = query.awaitTermination(timeout=300)  # bounded: a stuck stream fails
        if not finished:
            query.stop()
        assert finished, "the availableNow stream did not finish within 300 s"
        assert query.exception() is None
        return query

    query = run()
    assert gold_cards(spark, delta_path) == {tok(c) for c in range(8)} - {tok(1), tok(2)}
    assert version(spark, delta_path) == 1
    snapshot = sorted(spark.read.format("delta").load(delta_path).collect())

    # restart from the same checkpoint: nothing to replay, no second commit
    second = run()
    assert second.id == query.id
    assert version(spark, delta_path) == 1
    assert sorted(spark.read.format("delta").load(delta_path).collect()) == snapshot

    # the same batch id applied again (a crash after the commit) is skipped by Delta
    writer = RevocationBatchWriter(
        gold=delta_path, checkpoint=checkpoint, token_column="card_number_token", audit=audit
    )
    assert writer.resolve_app_id(spark) == f"cleanjoin-revocation:{query.id}"
    replay = writer(revocation_df(spark, [1, 2, 3]), 0)
    assert replay.replayed
    assert replay.version is None
    assert version(spark, delta_path) == 1
    assert sorted(spark.read.format("delta").load(delta_path).collect()) == snapshot

    # a new file is the next batch and is applied
    _write_json(inbox, "b.json", [3])
    run()
    assert version(spark, delta_path) == 2
    assert tok(3) not in gold_cards(spark, delta_path)
    batches = [e.parameters for e in audit.entries(spark=spark) if e.action == "revocation_batch"]
    assert [(p["batch_id"], p["rows_deleted"], p["replayed"]) for p in batches] == [
        (0, 4, False),
        (0, 0, True),
        (1, 2, False),
    ]


def test_stream_rejects_wrong_source(spark_classic: Any, delta_path: str, tmp_path: Path) -> None:
    make_gold(spark_classic, delta_path)
    with pytest.raises(InvalidArgumentError, match=re.escape("must be a streaming DataFrame")):
        start_revocation_stream(
            revocation_df(spark_classic, [1]),
            delta_path,
            str(tmp_path / "c"),
            token_column="card_number_token",
        )
    stream = spark_classic.readStream.schema("token string").json(str(tmp_path))
    with pytest.raises(
        RevocationInputError,
        match=re.escape("missing column(s) 'revoked_at', 'reason_code', 'source'"),
    ):
        start_revocation_stream(
            stream, delta_path, str(tmp_path / "c"), token_column="card_number_token"
        )


# ---------------------------------------------------------------- purge


def test_purge_makes_pre_revocation_versions_unreadable(spark: Any, delta_path: str) -> None:
    make_gold(spark, delta_path, dv=True)
    applied = apply_revocations(
        delta_path, revocation_df(spark, [1]), token_column="card_number_token"
    )
    assert applied.version == 1
    assert tok(1) in gold_cards(spark, delta_path, versionAsOf=0)  # still readable before purge
    result = purge(delta_path, retention_hours=0, spark=spark)
    assert result.reorg
    assert result.version_before == 1
    assert result.version_after > 1
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import PySparkException

    with pytest.raises(
        (Py4JJavaError, PySparkException),
        # Spark 4 names the error class; Spark 3.5 has only the exception's name
        match=r"FAILED_READ_FILE\.FILE_NOT_EXIST|SparkFileNotFoundException",
    ):
        gold_cards(spark, delta_path, versionAsOf=0)
    assert gold_cards(spark, delta_path) == {tok(c) for c in range(8)} - {tok(1)}
    assert spark.conf.get("spark.databricks.delta.retentionDurationCheck.enabled", None) in (
        None,
        "true",
    )


# ---------------------------------------------------------------- acceptance: the next run


def test_card_revoked_after_run_1_is_absent_from_run_2(spark: Any, tmp_path: Path) -> None:
    from cleanjoin import agg
    from cleanjoin.guard import GuardedJoin

    gold_path = str(tmp_path / "gold")
    revocations_path = str(tmp_path / "revocations")
    # cards 0-3 buy in "5411", cards 4-6 in "5812"; card 0 has two rows
    rows = [(tok(c), "5411" if c < 4 else "5812", 10 * (c + 1)) for c in range(7)]
    rows.append((tok(0), "5411", 5))
    spark.createDataFrame(
        rows, "card_number_token string, merchant_category_code string, amount int"
    ).write.format("delta").save(gold_path)
    accounts = spark.createDataFrame(
        [(tok(c), "1-3y") for c in range(7)], "card_number_token string, account_age_band string"
    )

    def run(revoked: Any) -> dict[str, tuple[int, int]]:
        gold = spark.read.format("delta").load(gold_path)
        result = (
            GuardedJoin(gold, accounts, on="card_number_token", revoked=revoked)
            .group_by("merchant_category_code")
            .agg(agg.count().alias("n"), agg.sum("amount", bounds=(0, 100)).alias("total"))
            .min_cohort(2)
            .run()
        )
        return {
            r["merchant_category_code"]: (int(r["n"]), int(r["total"])) for r in result.df.collect()
        }

    assert run(None) == {"5411": (5, 105), "5812": (3, 180)}

    # card 0 opts out after run 1
    optouts = spark.createDataFrame([(tok(0),), (tok(0),)], "card_number_token string")
    revocations_from_tokens(
        optouts, token_column="card_number_token", reason_code="OPT_OUT", source="issuer-portal"
    ).write.format("delta").mode("append").save(revocations_path)
    without_card_0 = {"5411": (3, 90), "5812": (3, 180)}

    # query time: the Gold table still holds card 0, the run excludes it
    assert run(revocations_path) == without_card_0
    # Gold path: the MERGE removes card 0, a run without a revocation list no longer sees it
    result = apply_revocations(
        gold_path, revocations_path, token_column="card_number_token", spark=spark
    )
    assert (result.distinct_tokens, result.rows_deleted) == (1, 2)
    assert run(None) == without_card_0
