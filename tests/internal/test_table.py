"""TableRef: one parse of "a path or a table name", no Spark needed."""

from __future__ import annotations

import dataclasses
import re

import pytest

from cleanjoin._table import TableRef
from cleanjoin.errors import InvalidArgumentError


def _parse(text: object) -> TableRef:
    return TableRef.parse(text, arg="path", call="AuditLog")


@pytest.mark.parametrize(
    "text",
    [
        "/tmp/audit",
        "relative/audit",
        "./audit",
        "C:\\data\\audit",
        "s3://bucket/audit",
        "abfss://container@account.dfs.core.windows.net/audit",
        "dbfs:/mnt/audit",
        "file:/tmp/a.b.c",
        "/Volumes/main/clean_room/files/audit",
        "/tmp/a`b",
        "/tmp/my.schema.table",
    ],
)
def test_paths_are_kept_exactly_as_given(text: str) -> None:
    ref = _parse(text)
    assert ref.is_path
    assert ref.given == ref.name == text
    assert ref.parts == ()
    assert ref.sql == "delta.`" + text.replace("`", "``") + "`"
    assert ref.describe == f"at '{text}'"
    assert ref.identity() == {"path": text}


@pytest.mark.parametrize(
    ("text", "parts", "sql", "name"),
    [
        ("default.audit", ("default", "audit"), "`default`.`audit`", "default.audit"),
        (
            "spark_catalog.default.cj_audit_1",
            ("spark_catalog", "default", "cj_audit_1"),
            "`spark_catalog`.`default`.`cj_audit_1`",
            "spark_catalog.default.cj_audit_1",
        ),
        (
            "`main`.`clean-room`.audit",
            ("main", "clean-room", "audit"),
            "`main`.`clean-room`.`audit`",
            "main.`clean-room`.audit",
        ),
        ("`a.b`.c", ("a.b", "c"), "`a.b`.`c`", "`a.b`.c"),
        ("s.`x``y`", ("s", "x`y"), "`s`.`x``y`", "s.`x``y`"),
        ("`s/x`.t", ("s/x", "t"), "`s/x`.`t`", "`s/x`.t"),
        ("Main.Gold.T1", ("Main", "Gold", "T1"), "`Main`.`Gold`.`T1`", "Main.Gold.T1"),
        ("s.1t", ("s", "1t"), "`s`.`1t`", "s.`1t`"),
    ],
)
def test_names_are_split_into_parts_and_quoted(
    text: str, parts: tuple[str, ...], sql: str, name: str
) -> None:
    ref = _parse(text)
    assert not ref.is_path
    assert ref.given == text
    assert ref.parts == parts
    assert ref.sql == sql
    assert ref.name == name
    assert ref.describe == f"'{name}'"
    assert ref.identity() == {"table": name}


def test_a_name_round_trips_through_its_sql_form() -> None:
    for text in ("`main`.`clean-room`.audit", "s.`x``y`", "`a.b`.c"):
        ref = _parse(text)
        assert _parse(ref.sql).parts == ref.parts
        assert _parse(ref.name).parts == ref.parts


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("audit", "got a one-part name; write schema.table (or ./name for a relative path)"),
        ("`audit`", "got a one-part name"),
        ("a.b.c.d", "got a name of 4 parts"),
        ("a..b", "part 2 of the name is empty"),
        (".a.b", "part 1 of the name is empty"),
        ("a.b.", "part 3 of the name is empty"),
        ("a.``.b", "part 2 of the name is empty"),
        ("a.`b", "a backquote is not closed"),
        ("a.`b`c", "part 2 of the name has characters after its closing backquote"),
        ("a.my-table", "part 2 of the name has characters other than letters, digits and '_'"),
        ("a.b c", "part 2 of the name has characters other than letters, digits and '_'"),
        ("a; DROP TABLE x.y", "part 1 of the name has characters other than letters"),
    ],
)
def test_a_bad_name_says_why_and_names_the_argument(text: str, problem: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        _parse(text)
    message = str(info.value)
    assert message.startswith(
        "'path' in AuditLog must be a Delta path or a table name "
        "(schema.table or catalog.schema.table)"
    )
    assert problem in message


def test_a_bad_name_is_never_repeated_in_the_message() -> None:
    secret = "dapi0123456789abcdef0123456789abcdef"
    for text in (secret, f"{secret}.x y", f"a.`{secret}", f"a.b.c.{secret}"):
        with pytest.raises(InvalidArgumentError) as info:
            _parse(text)
        assert secret not in str(info.value)


@pytest.mark.parametrize(("value", "problem"), [("", "got an empty string"), ("  ", "got an empty string"), (None, "got NoneType"), (3, "got int")])
def test_not_a_string_or_blank(value: object, problem: str) -> None:
    with pytest.raises(InvalidArgumentError, match=re.escape(problem)):
        _parse(value)


def test_with_leaf_builds_a_sibling() -> None:
    assert _parse("/tmp/ledger").with_leaf("_releases/ab", "_release_ab").given == "/tmp/ledger_releases/ab"
    sibling = _parse("`cat`.`my-s`.ledger").with_leaf("_releases/ab", "_release_ab")
    assert sibling.parts == ("cat", "my-s", "ledger_release_ab")
    assert sibling.sql == "`cat`.`my-s`.`ledger_release_ab`"
    assert _parse(sibling.given).parts == sibling.parts


def test_table_ref_is_frozen() -> None:
    ref = _parse("s.t")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.given = "x.y"  # type: ignore[misc]
