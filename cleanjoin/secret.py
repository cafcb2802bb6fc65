"""The shared secret key that turns identifiers into join tokens.

A :class:`Secret` holds the key both parties of a clean room share. It is built from an
environment variable, a file, a Databricks secret scope or bytes, and it refuses keys
shorter than 32 bytes. It never shows key material: ``repr``/``str`` name only where the
key came from, pickling is refused (so a key cannot slip into a Spark closure, a cache or
a log record), and copying returns the same object.

Key encodings:

* ``Secret.from_env(name)``: the variable's value is ``base64:<standard base64>``,
  ``hex:<hex digits>``, or otherwise taken as its UTF-8 bytes.
* ``Secret.from_file(path)``: the file's raw bytes, exactly (a trailing newline is part of
  the key!), unless ``encoding="base64"`` or ``"hex"`` says the file holds text to decode
  (surrounding whitespace is then ignored).
* ``Secret.from_dbutils(scope, key)``: the bytes of a Databricks secret.

Both parties compare :meth:`Secret.check_value` (12 hex characters) before joining.

Example:
    >>> secret = Secret.from_bytes(bytes(range(32)))
    >>> secret
    Secret(source='bytes', length=32)
    >>> secret.check_value()
    '6d15013e3b2f'
    >>> Secret.from_bytes(b"short")
    Traceback (most recent call last):
    ...
    cleanjoin.errors.WeakKeyError: Secret.from_bytes: the key has 5 bytes; at least 32 are required (use 32 random bytes, e.g. secrets.token_bytes(32))
"""

from __future__ import annotations

import base64
import binascii
import builtins
import os
from pathlib import Path
from typing import Any, Literal, NoReturn

from cleanjoin import reference
from cleanjoin.errors import (
    InvalidArgumentError,
    MissingSecretError,
    SparkEnvironmentError,
    WeakKeyError,
)

__all__ = ["MIN_KEY_BYTES", "Secret"]

MIN_KEY_BYTES = 32
"""The shortest key :class:`Secret` accepts (256 bits)."""


class Secret:
    """A secret HMAC key that never reveals itself.

    Build one with :meth:`from_env`, :meth:`from_file`, :meth:`from_dbutils` or
    :meth:`from_bytes`; the constructor is not public API.
    """

    __slots__ = ("__key", "_source")
    __key: bytes
    _source: str

    def __init__(self, key: bytes, *, source: str, _allow_short: bool = False) -> None:
        if not isinstance(key, bytes | bytearray | memoryview):
            raise InvalidArgumentError(
                f"Secret: the key must be bytes, got {type(key).__name__}"
            )
        raw = bytes(key)
        if not _allow_short and len(raw) < MIN_KEY_BYTES:
            raise WeakKeyError(
                f"{source_call(source)}: the key has {len(raw)} bytes; at least "
                f"{MIN_KEY_BYTES} are required (use 32 random bytes, e.g. secrets.token_bytes(32))"
            )
        object.__setattr__(self, "_Secret__key", raw)
        object.__setattr__(self, "_source", source)

    # -- constructors -------------------------------------------------------------------
    @classmethod
    def from_bytes(cls, key: bytes) -> Secret:
        """A secret from raw key bytes (at least 32).

        Raises:
            WeakKeyError: the key is shorter than 32 bytes.

        Example:
            >>> Secret.from_bytes(b"k" * 40)
            Secret(source='bytes', length=40)
        """
        return cls(key, source="bytes")

    @classmethod
    def from_env(cls, name: str) -> Secret:
        """A secret from the environment variable ``name``.

        The value is ``base64:...``, ``hex:...`` or else used as its UTF-8 bytes.

        Raises:
            MissingSecretError: the variable is unset or empty (the message names the
                variable, never a value).
            InvalidArgumentError: a ``base64:``/``hex:`` value does not decode.
            WeakKeyError: the decoded key is shorter than 32 bytes.

        Example:
            >>> import os
            >>> os.environ["CLEANJOIN_DOCTEST_KEY"] = "hex:" + "ab" * 32
            >>> Secret.from_env("CLEANJOIN_DOCTEST_KEY")
            Secret(source='env:CLEANJOIN_DOCTEST_KEY', length=32)
        """
        source = f"env:{name}"
        value = os.environ.get(name)
        if not value:
            state = "is not set" if value is None else "is empty"
            raise MissingSecretError(
                f"Secret.from_env: the environment variable {name!r} {state}; put the shared "
                f"key there as 'base64:<key>', 'hex:<key>' or plain text of at least "
                f"{MIN_KEY_BYTES} bytes"
            )
        return cls(_decode_text(value, source), source=source)

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], *, encoding: Literal["raw", "base64", "hex"] = "raw"
    ) -> Secret:
        """A secret from a file: its raw bytes, or base64/hex text with ``encoding=``.

        With ``encoding="raw"`` every byte counts, including a trailing newline; compare
        :meth:`check_value` with your partner to catch such differences.

        Raises:
            MissingSecretError: the file does not exist or cannot be read.
            InvalidArgumentError: unknown ``encoding`` or text that does not decode.
            WeakKeyError: the key is shorter than 32 bytes.

        Example:
            >>> import tempfile, os
            >>> with tempfile.TemporaryDirectory() as d:
            ...     p = os.path.join(d, "key.b64")
            ...     _ = open(p, "w").write(base64.b64encode(bytes(32)).decode() + "\\n")
            ...     Secret.from_file(p, encoding="base64")
            Secret(source='file', length=32)
        """
        if encoding not in ("raw", "base64", "hex"):
            raise InvalidArgumentError(
                f"'encoding' in Secret.from_file must be \"raw\", \"base64\" or \"hex\", got {encoding!r}"
            )
        file = Path(path)
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise MissingSecretError(
                f"Secret.from_file: cannot read the key file {str(file)!r} ({exc.strerror or type(exc).__name__})"
            ) from None
        if encoding != "raw":
            try:
                text = data.decode("ascii").strip()
            except UnicodeDecodeError:
                raise InvalidArgumentError(
                    f"Secret.from_file: the key file is not {encoding} text"
                ) from None
            data = _decode(text, encoding, "file")
        return cls(data, source="file")

    @classmethod
    def from_dbutils(cls, scope: str, key: str) -> Secret:
        """A secret from a Databricks secret scope (``dbutils.secrets.getBytes``).

        ``dbutils`` is looked up in the IPython/notebook namespace, in ``builtins``, and
        finally built from ``pyspark.dbutils.DBUtils`` with the active session.

        Raises:
            SparkEnvironmentError: not running on Databricks (no ``dbutils``).
            MissingSecretError: the scope or key does not exist.
            WeakKeyError: the secret is shorter than 32 bytes.

        Example:
            >>> Secret.from_dbutils("clean-room", "join-key")  # doctest: +SKIP
            Secret(source='dbutils:clean-room/join-key', length=32)
        """
        dbutils = _find_dbutils()
        source = f"dbutils:{scope}/{key}"
        try:
            secrets_api = dbutils.secrets
            get_bytes = getattr(secrets_api, "getBytes", None)
            data = get_bytes(scope, key) if get_bytes is not None else secrets_api.get(scope, key)
        except Exception as exc:  # the Databricks error type is not importable here
            raise MissingSecretError(
                f"Secret.from_dbutils: cannot read secret {key!r} in scope {scope!r} "
                f"({type(exc).__name__})"
            ) from None
        if isinstance(data, str):
            data = data.encode("utf-8")
        return cls(data, source=source)

    # -- use ------------------------------------------------------------------------------
    def check_value(self) -> str:
        """The key check value: 12 hex characters of HMAC-SHA256(key, a fixed constant).

        Safe to share: it identifies the key without revealing it (see
        ``docs/token-spec.md`` and :func:`cleanjoin.reference.check_value`).
        """
        return reference.check_value(self.__key)

    @property
    def source(self) -> str:
        """Where the key came from (``"bytes"``, ``"file"``, ``"env:NAME"``, ``"dbutils:scope/key"``)."""
        return self._source

    def __len__(self) -> int:
        return len(self.__key)

    def _key_bytes(self) -> bytes:
        """The raw key. Private: only cleanjoin's token code may call it."""
        return self.__key

    # -- never reveal -----------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"Secret(source={self._source!r}, length={len(self.__key)})"

    __str__ = __repr__

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError("Secret is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("Secret is immutable")

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError(
            "Secret cannot be pickled or serialized: key material must not leave this process "
            "(do not capture a Secret in a UDF, a cache or a log record)"
        )

    def __reduce__(self) -> NoReturn:
        self.__reduce_ex__(None)

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: Any) -> Secret:
        return self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        import hmac

        return hmac.compare_digest(self.__key, other._key_bytes())

    def __hash__(self) -> int:
        return hash(("cleanjoin.Secret", self.check_value()))


def source_call(source: str) -> str:
    """The constructor name matching a source label (for error messages)."""
    kind = source.split(":", 1)[0]
    return {"env": "Secret.from_env", "file": "Secret.from_file", "dbutils": "Secret.from_dbutils"}.get(
        kind, "Secret.from_bytes"
    )


def _decode(text: str, encoding: str, source: str) -> bytes:
    try:
        if encoding == "base64":
            return base64.b64decode(text.encode("ascii"), validate=True)
        return bytes.fromhex(text)
    except (ValueError, binascii.Error, UnicodeEncodeError):
        raise InvalidArgumentError(
            f"{source_call(source)}: the key is marked as {encoding} but does not decode as {encoding}"
        ) from None


def _decode_text(value: str, source: str) -> bytes:
    for prefix, encoding in (("base64:", "base64"), ("hex:", "hex")):
        if value.startswith(prefix):
            return _decode(value[len(prefix) :].strip(), encoding, source)
    return value.encode("utf-8")


def _find_dbutils() -> Any:
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None and "dbutils" in shell.user_ns:
            return shell.user_ns["dbutils"]
    except ImportError:
        pass
    found = getattr(builtins, "dbutils", None)
    if found is not None:
        return found
    try:
        from pyspark.dbutils import DBUtils  # type: ignore[import-not-found]
        from pyspark.sql import SparkSession

        session = SparkSession.getActiveSession()
        if session is not None:
            return DBUtils(session)
    except ImportError:
        pass
    raise SparkEnvironmentError(
        "Secret.from_dbutils needs Databricks 'dbutils', which is not available here "
        "(not a Databricks runtime). Use Secret.from_env or Secret.from_file instead."
    )
