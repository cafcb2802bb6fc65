"""Where a Delta table lives: a path or a Unity Catalog / metastore name, parsed once.

Every cleanjoin call that takes a table (audit log, budget ledger, revocation list, Gold
table, consent agreements, ``write_delta``) takes a string that is either

* a **path** — it has a ``/`` or ``\\`` outside backquotes, or starts with a URI scheme
  (``s3://``, ``abfss://``, ``dbfs:/``, ``file:``); it is used exactly as given, through
  ``delta.`path```; or
* a **table name** — ``schema.table`` or ``catalog.schema.table``; a part may be
  backquoted (`` `my-catalog`.gold.t ``, a backquote inside written twice).

:class:`TableRef` is the parsed form. Its messages name the argument and the call but
never repeat a string that does not parse (it could be anything, a secret included).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from cleanjoin._compat import overwrite_by_name
from cleanjoin._delta import quote_path
from cleanjoin._sql import quote_identifier
from cleanjoin._typing import DataFrame, SparkSession
from cleanjoin.errors import InvalidArgumentError

__all__ = ["Commit", "TableRef"]

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_PLAIN = re.compile(r"^[A-Za-z0-9_]+$")
_DISPLAY_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FORMS = "a Delta path or a table name (schema.table or catalog.schema.table)"
_HISTORY_LOOK = 20  # commits append_once reads back to find its own, when not the newest


def _outside_backquotes(text: str) -> str:
    """The characters of ``text`` that are not inside a backquoted part."""
    out = []
    inside = False
    for char in text:
        if char == "`":
            inside = not inside  # a doubled backquote toggles twice: still inside
        elif not inside:
            out.append(char)
    return "".join(out)


def _looks_like_path(text: str) -> bool:
    outside = _outside_backquotes(text)
    return "/" in outside or "\\" in outside or _SCHEME.match(text) is not None


def _split_name(text: str) -> tuple[list[str], str | None]:
    """The parts of a dotted name, or ``(parts so far, problem)`` when it does not parse."""
    parts: list[str] = []
    i, n = 0, len(text)
    while True:
        number = len(parts) + 1
        if i < n and text[i] == "`":
            j, buf = i + 1, []
            while True:
                if j >= n:
                    return parts, "a backquote is not closed"
                if text[j] == "`":
                    if j + 1 < n and text[j + 1] == "`":
                        buf.append("`")
                        j += 2
                        continue
                    break
                buf.append(text[j])
                j += 1
            part, i = "".join(buf), j + 1
            if not part:
                return parts, f"part {number} of the name is empty"
            if i < n and text[i] != ".":
                return parts, f"part {number} of the name has characters after its closing backquote"
        else:
            j = text.find(".", i)
            j = n if j < 0 else j
            part, i = text[i:j], j
            if not part:
                return parts, f"part {number} of the name is empty"
            if not _PLAIN.match(part):
                return parts, (
                    f"part {number} of the name has characters other than letters, digits and "
                    "'_' (backquote such a part: `my-schema`)"
                )
        parts.append(part)
        if i >= n:
            return parts, None
        i += 1  # the dot
        if i >= n:
            return parts, f"part {number + 1} of the name is empty"


_COMMIT_METADATA = "spark.databricks.delta.commitInfo.userMetadata"
_COMMIT_METADATA_LOCK = threading.Lock()


@dataclass(frozen=True)
class TableRef:
    """A Delta table given by path or by name.

    Attributes:
        given: the string the caller gave, unchanged.
        parts: the name's parts (``("main", "gold", "t")``), or ``()`` for a path.

    Example:
        >>> TableRef.parse("/tmp/a`b", arg="path", call="AuditLog").sql
        'delta.`/tmp/a``b`'
        >>> ref = TableRef.parse("main.`clean-room`.audit", arg="path", call="AuditLog")
        >>> ref.sql, ref.name, ref.describe, ref.is_path
        ('`main`.`clean-room`.`audit`', 'main.`clean-room`.audit', "'main.`clean-room`.audit'", False)
    """

    given: str
    parts: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: object, *, arg: str, call: str) -> TableRef:
        """Parse ``value`` (a path or a 2- or 3-part table name) given as ``arg`` to ``call``.

        Raises:
            InvalidArgumentError: ``value`` is not a string, is blank, or is neither a path
                nor a valid name; the message says why without repeating ``value``.

        Example:
            >>> TableRef.parse("gold", arg="gold", call="purge")
            Traceback (most recent call last):
            ...
            cleanjoin.errors.InvalidArgumentError: 'gold' in purge must be a Delta path or a table name (schema.table or catalog.schema.table); got a one-part name; write schema.table (or ./name for a relative path)
        """
        if not isinstance(value, str):
            raise InvalidArgumentError(
                f"'{arg}' in {call} must be {_FORMS}, got {type(value).__name__}"
            )
        if not value.strip():
            raise InvalidArgumentError(f"'{arg}' in {call} must be {_FORMS}; got an empty string")
        if _looks_like_path(value):
            return cls(given=value)
        parts, problem = _split_name(value)
        if problem is None and len(parts) == 1:
            problem = "got a one-part name; write schema.table (or ./name for a relative path)"
        elif problem is None and len(parts) > 3:
            problem = f"got a name of {len(parts)} parts"
        if problem is not None:
            raise InvalidArgumentError(f"'{arg}' in {call} must be {_FORMS}; {problem}")
        return cls(given=value, parts=tuple(parts))

    @property
    def is_path(self) -> bool:
        """True for a path, False for a table name."""
        return not self.parts

    @property
    def sql(self) -> str:
        """The table in SQL: ``delta.`path``` or every part backquoted."""
        if self.is_path:
            return quote_path(self.given)
        return ".".join(quote_identifier(p) for p in self.parts)

    @property
    def name(self) -> str:
        """The path as given, or the name with only the parts that need it backquoted."""
        if self.is_path:
            return self.given
        return ".".join(p if _DISPLAY_PLAIN.match(p) else quote_identifier(p) for p in self.parts)

    @property
    def describe(self) -> str:
        """For messages: ``at '<path>'`` or ``'<name>'`` ("no Delta table at '/x'" / "... 'a.b'")."""
        return f"at '{self.given}'" if self.is_path else f"'{self.name}'"

    def identity(self) -> dict[str, str]:
        """``{"path": path}`` or ``{"table": name}``: how audit entries and reports name it."""
        return {"path": self.given} if self.is_path else {"table": self.name}

    def with_leaf(self, path_suffix: str, name_suffix: str) -> TableRef:
        """A table beside this one: ``<path><path_suffix>`` or ``<name><name_suffix>`` (same schema).

        Example:
            >>> TableRef.parse("s.t", arg="a", call="c").with_leaf("_r/1", "_r_1").name
            's.t_r_1'
        """
        if self.is_path:
            return TableRef(given=self.given + path_suffix)
        leaf = self.parts[-1] + name_suffix
        parts = (*self.parts[:-1], leaf)
        return TableRef(given=".".join(quote_identifier(p) for p in parts), parts=parts)

    def read(self, spark: SparkSession) -> DataFrame:
        """The table as a DataFrame (lazy under Spark Connect: analysis happens on use)."""
        if self.is_path:
            return cast("DataFrame", spark.read.format("delta").load(self.given))
        return cast("DataFrame", spark.read.table(self.sql))

    def save(self, writer: Any) -> None:
        """Run a ``DataFrameWriter`` (format and options set) into this table."""
        if self.is_path:
            writer.save(self.given)
        else:
            writer.saveAsTable(self.sql)

    def overwrite(self, writer: Any, spark: SparkSession, *, user_metadata: str) -> None:
        """Replace this table's rows with a ``DataFrameWriter``'s (format and options set,
        no mode) in one Delta commit whose ``userMetadata`` is ``user_metadata``, creating
        the table if it does not exist.

        Delta 3.3 on Spark 3.5 refuses ``saveAsTable`` in overwrite mode ("does not
        support truncate in batch mode", measured with delta-spark 3.3.2), so there an
        existing named table is overwritten at its location (the same Delta log, so the
        same table and history), and a missing one is created with ``CREATE TABLE AS
        SELECT``, which ignores the writer's ``userMetadata`` option (on every line): its
        metadata comes from the session setting Delta reads instead, set for that one
        write under a lock (a thread of this process writing at the same time cannot take
        it; other clients have sessions of their own).
        """
        if self.is_path or overwrite_by_name():
            self.save(writer.mode("overwrite"))
        elif spark.catalog.tableExists(self.sql):
            location = spark.sql(f"DESCRIBE DETAIL {self.sql}").select("location").first()[0]
            writer.mode("overwrite").save(str(location))
        else:
            with _COMMIT_METADATA_LOCK:
                previous = spark.conf.get(_COMMIT_METADATA, None)
                spark.conf.set(_COMMIT_METADATA, user_metadata)
                try:
                    writer.mode("error").saveAsTable(self.sql)  # "errorifexists": not in Connect 3.5
                finally:
                    if previous is None:
                        spark.conf.unset(_COMMIT_METADATA)
                    else:
                        spark.conf.set(_COMMIT_METADATA, previous)

    def latest_commit(self, spark: SparkSession) -> tuple[int, str | None] | None:
        """The newest commit's ``(version, userMetadata)``, or ``None`` without history:
        one read of the newest commit file (one small job), none of the table's rows.

        Raises whatever Spark raises for a missing table (see ``cleanjoin._delta.is_missing``).
        """
        rows = spark.sql(f"DESCRIBE HISTORY {self.sql} LIMIT 1").collect()
        if not rows:
            return None
        meta = rows[0]["userMetadata"]
        return int(rows[0]["version"]), None if meta is None else str(meta)

    def commit_once(
        self,
        df: DataFrame,
        *,
        app_id: str,
        version: int,
        marker: str,
        landed: Callable[[], bool],
    ) -> Commit:
        """Append ``df`` as one commit unless ``(app_id, version)`` was committed before,
        and say whether this call committed it and at which table version.

        A compare-and-append in one blind append: Delta's idempotent writes
        (``txnAppId``/``txnVersion``) skip a write whose version is not above the last one
        committed for ``app_id``, and a writer that races another one for the same version
        fails with ``ConcurrentTransactionException`` (a conflict: the caller retries). A
        skipped write makes no commit, so this looks for ``marker`` (this commit's unique
        ``userMetadata``): in the newest commit first (one small job: the common case, no
        other writer in between), then in the last commits; if more commits than it reads
        came in between, ``landed()`` decides (the version is then unknown). One write job
        and one history read, where an insert-only ``MERGE`` scans and joins the target
        first.
        """
        writer = (
            df.write.format("delta").mode("append").option("txnAppId", app_id)
            .option("txnVersion", str(int(version))).option("userMetadata", marker)
        )
        self.save(writer)
        spark = df.sparkSession
        newest = self.latest_commit(spark)
        if newest is not None and newest[1] == marker:
            return Commit(landed=True, version=newest[0])
        recent = spark.sql(f"DESCRIBE HISTORY {self.sql} LIMIT {_HISTORY_LOOK}").collect()
        for row in recent:
            if row["userMetadata"] == marker:
                return Commit(landed=True, version=int(row["version"]))
        if len(recent) < _HISTORY_LOOK:
            return Commit(landed=False, version=None)  # the whole history was read: skipped
        return Commit(landed=landed(), version=None)

    def append_once(
        self,
        df: DataFrame,
        *,
        app_id: str,
        version: int,
        marker: str,
        landed: Callable[[], bool],
    ) -> bool:
        """Append ``df`` as one commit unless ``(app_id, version)`` was committed before
        (:meth:`commit_once`, without the version).

        Returns:
            True when this call committed ``df``; False when the version was taken.
        """
        return self.commit_once(
            df, app_id=app_id, version=version, marker=marker, landed=landed
        ).landed


@dataclass(frozen=True)
class Commit:
    """What :meth:`TableRef.commit_once` did.

    Attributes:
        landed: True when this call committed its rows; False when the version was taken.
        version: the table version of the commit, when known (``None`` when it did not
            land, or landed further back than the history read).
    """

    landed: bool
    version: int | None = None
