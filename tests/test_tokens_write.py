"""write_tokens: the tokens of tokenize() written to Delta in one pass, counts observed on the
write, the same audit entry as tokenize(audit=...), nothing written on bad input."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from chispa import assert_df_equality
from pyspark.errors import AnalysisException

from cleanjoin import reference
from cleanjoin.audit import AuditLog
from cleanjoin.errors import (
    ColumnNotFoundError,
    InvalidArgumentError,
    TokenSpecError,
    UnsupportedColumnTypeError,
)
from cleanjoin.secret import Secret
from cleanjoin.tokens import TokenWrite, tokenize, write_tokens

KEY = bytes(range(11, 51))
SECRET = Secret.from_bytes(KEY)
RAW = ["4111111111111111", " 4111-1111-1111-1112 ", "bad-pan", "Alice@Example.COM "]
ROWS = [
    (RAW[0], "a@b.co", 1),
    (RAW[1], RAW[3], 2),
    (RAW[2], None, 3),
    (None, "", 4),
]
SCHEMA = "pan string, email string, n int"
COLUMNS = {"pan": "pan", "email": "email"}


def _df(spark: Any) -> Any:
    return spark.createDataFrame(ROWS, SCHEMA)


def _forbidden() -> list[str]:
    tokens = [reference.token(v, KEY, "pan") for v in RAW[:2]]
    tokens += [reference.token(v, KEY, "email") for v in ("a@b.co", RAW[3])]
    return [*RAW, "a@b.co", KEY.hex(), *(t for t in tokens if t)]


def test_tokens_counts_and_result(spark: Any, tmp_path: Path) -> None:
    table = str(tmp_path / "gold")
    done = write_tokens(_df(spark), COLUMNS, table, secret=SECRET)
    assert isinstance(done, TokenWrite)
    assert done.table == table
    assert done.columns == ("pan_token", "email_token", "n")
    assert done.rows == 4
    assert dict(done.null_tokens) == {"pan_token": 2, "email_token": 2}
    assert done.audit_seq is None
    written = spark.read.format("delta").load(table)
    assert_df_equality(written, tokenize(_df(spark), COLUMNS, secret=SECRET), ignore_row_order=True)
    text = repr(done) + str(done)
    for bad in _forbidden():
        assert bad not in text


def test_modes_append_and_error(spark: Any, tmp_path: Path) -> None:
    table = str(tmp_path / "gold")
    write_tokens(_df(spark), COLUMNS, table, secret=SECRET, mode="error")
    again = write_tokens(_df(spark), COLUMNS, table, secret=SECRET, mode="append")
    assert again.rows == 4  # the rows of this write, not of the table
    assert spark.read.format("delta").load(table).count() == 8
    log = AuditLog(str(tmp_path / "audit"), actor="tests")
    with pytest.raises(AnalysisException) as caught:  # Spark's own "already exists" error
        write_tokens(_df(spark), COLUMNS, table, secret=SECRET, mode="error", audit=log)
    assert "already exist" in str(caught.value).lower()
    assert spark.read.format("delta").load(table).count() == 8
    assert log.entries(spark=spark) == []  # no audit entry for a write that failed
    replaced = write_tokens(_df(spark).limit(1), COLUMNS, table, secret=SECRET)
    assert replaced.rows == 1
    assert spark.read.format("delta").load(table).count() == 1


def test_audit_entry_equals_tokenize_audit(spark: Any, tmp_path: Path) -> None:
    old = AuditLog(str(tmp_path / "audit_old"), actor="tests")
    new = AuditLog(str(tmp_path / "audit_new"), actor="tests")
    tokenize(_df(spark), COLUMNS, secret=SECRET, audit=old)
    done = write_tokens(_df(spark), COLUMNS, str(tmp_path / "gold"), secret=SECRET, audit=new)
    [before] = old.entries(spark=spark)
    [after] = new.entries(spark=spark)
    assert done.audit_seq == after.seq == 0
    assert after.action == before.action == "tokenize"
    assert after.parameters == before.parameters
    assert after.output == before.output
    assert after.inputs == before.inputs
    assert after.parameters["rows"] == 4
    assert after.parameters["null_tokens"] == {"pan_token": 2, "email_token": 2}
    text = after.to_json()
    for bad in _forbidden():
        assert bad not in text


def test_bad_input_writes_nothing(spark: Any, tmp_path: Path) -> None:
    table = tmp_path / "gold"
    log = AuditLog(str(tmp_path / "audit"), actor="tests")
    df = _df(spark)
    typed = spark.createDataFrame([(4111111111111111,)], "pan bigint")
    clash = spark.createDataFrame([(RAW[0], "x")], "pan string, pan_token string")
    cases: list[tuple[type[Exception], str, Any]] = [
        (ColumnNotFoundError, "write_tokens: column 'card' not found",
         lambda: write_tokens(df, {"card": "pan"}, str(table), secret=SECRET, audit=log)),
        (UnsupportedColumnTypeError, "write_tokens: column 'pan' has type bigint",
         lambda: write_tokens(typed, {"pan": "pan"}, str(table), secret=SECRET, audit=log)),
        (TokenSpecError, 'Available options are "pan", "email", "text"',
         lambda: write_tokens(df, {"pan": "phone"}, str(table), secret=SECRET, audit=log)),
        (InvalidArgumentError, "'secret' in write_tokens must be a cleanjoin.Secret",
         lambda: write_tokens(df, COLUMNS, str(table), secret=KEY, audit=log)),  # type: ignore[arg-type]
        (InvalidArgumentError, "output column 'pan_token' for 'pan' already exists",
         lambda: write_tokens(clash, {"pan": "pan"}, str(table), secret=SECRET, audit=log)),
        (InvalidArgumentError, 'Unknown mode \'merge\' in write_tokens. Available options are "overwrite"',
         lambda: write_tokens(df, COLUMNS, str(table), secret=SECRET, mode="merge", audit=log)),  # type: ignore[arg-type]
        (InvalidArgumentError, "'table' in write_tokens must be a Delta path or a table name",
         lambda: write_tokens(df, COLUMNS, "gold", secret=SECRET, audit=log)),
        (InvalidArgumentError, "'audit' in write_tokens must be a cleanjoin.audit.AuditLog",
         lambda: write_tokens(df, COLUMNS, str(table), secret=SECRET, audit="log")),  # type: ignore[arg-type]
    ]
    for error, message, call in cases:
        with pytest.raises(error, match=re.escape(message)) as caught:
            call()
        for bad in _forbidden():
            assert bad not in str(caught.value)
    assert not table.exists()
    assert not (tmp_path / "audit").exists()
