"""Secret: sources, key encodings, minimum length, and never revealing key material."""

from __future__ import annotations

import base64
import builtins
import copy
import logging
import pickle
import re
from pathlib import Path
from typing import Any

import pytest

from cleanjoin import reference
from cleanjoin.errors import (
    InvalidArgumentError,
    MissingSecretError,
    SparkEnvironmentError,
    WeakKeyError,
)
from cleanjoin.secret import Secret

KEY = bytes(range(100, 140))


def _forbidden(key: bytes) -> list[str]:
    return [key.hex(), key.hex().upper(), base64.b64encode(key).decode(), repr(key)[2:-1]]


def test_from_bytes_and_check_value() -> None:
    secret = Secret.from_bytes(KEY)
    assert secret.check_value() == reference.check_value(KEY)
    assert re.fullmatch(r"[0-9a-f]{12}", secret.check_value())
    assert len(secret) == 40
    assert secret == Secret.from_bytes(bytearray(KEY))
    assert secret != Secret.from_bytes(KEY[::-1])


def test_short_key_is_weak() -> None:
    with pytest.raises(
        WeakKeyError,
        match=re.escape("Secret.from_bytes: the key has 31 bytes; at least 32 are required"),
    ):
        Secret.from_bytes(b"x" * 31)


def test_non_bytes_key_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match=re.escape("the key must be bytes, got str")):
        Secret.from_bytes("x" * 40)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("base64:" + base64.b64encode(KEY).decode(), KEY),
        ("hex:" + KEY.hex(), KEY),
        ("hex:" + KEY.hex().upper() + "\n", KEY),
        ("a plain text passphrase of enough length", b"a plain text passphrase of enough length"),
    ],
)
def test_from_env_encodings(monkeypatch: pytest.MonkeyPatch, value: str, expected: bytes) -> None:
    monkeypatch.setenv("CJ_TEST_KEY", value)
    secret = Secret.from_env("CJ_TEST_KEY")
    assert secret.check_value() == reference.check_value(expected)
    assert secret.source == "env:CJ_TEST_KEY"


def test_from_env_missing_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CJ_TEST_KEY", raising=False)
    with pytest.raises(MissingSecretError, match=re.escape("'CJ_TEST_KEY' is not set")):
        Secret.from_env("CJ_TEST_KEY")
    monkeypatch.setenv("CJ_TEST_KEY", "")
    with pytest.raises(MissingSecretError, match=re.escape("'CJ_TEST_KEY' is empty")):
        Secret.from_env("CJ_TEST_KEY")


def test_from_env_errors_never_echo_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CJ_TEST_KEY", "hex:zz-not-hex-but-secretish")
    with pytest.raises(InvalidArgumentError, match=re.escape("marked as hex")) as info:
        Secret.from_env("CJ_TEST_KEY")
    assert "secretish" not in str(info.value)
    monkeypatch.setenv("CJ_TEST_KEY", "short-secret-value")
    with pytest.raises(WeakKeyError) as weak:
        Secret.from_env("CJ_TEST_KEY")
    assert "short-secret-value" not in str(weak.value)
    assert "Secret.from_env" in str(weak.value)


def test_from_file_raw_and_encoded(tmp_path: Path) -> None:
    raw = tmp_path / "key.bin"
    raw.write_bytes(KEY)
    assert Secret.from_file(raw) == Secret.from_bytes(KEY)
    newline = tmp_path / "key.txt"
    newline.write_bytes(KEY + b"\n")  # raw means raw: the newline is part of the key
    assert Secret.from_file(newline) != Secret.from_bytes(KEY)
    b64 = tmp_path / "key.b64"
    b64.write_text(base64.b64encode(KEY).decode() + "\n")
    assert Secret.from_file(b64, encoding="base64") == Secret.from_bytes(KEY)
    hexfile = tmp_path / "key.hex"
    hexfile.write_text(KEY.hex())
    assert Secret.from_file(str(hexfile), encoding="hex") == Secret.from_bytes(KEY)


def test_from_file_errors(tmp_path: Path) -> None:
    with pytest.raises(MissingSecretError, match=re.escape("cannot read the key file")):
        Secret.from_file(tmp_path / "absent")
    bad = tmp_path / "bad"
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(InvalidArgumentError, match=re.escape("is not base64 text")):
        Secret.from_file(bad, encoding="base64")
    with pytest.raises(InvalidArgumentError, match=re.escape("'encoding' in Secret.from_file")):
        Secret.from_file(bad, encoding="pem")  # type: ignore[arg-type]
    short = tmp_path / "short"
    short.write_bytes(b"x" * 8)
    with pytest.raises(WeakKeyError, match=re.escape("Secret.from_file: the key has 8 bytes")):
        Secret.from_file(short)


def test_from_dbutils_absent_is_a_clear_error() -> None:
    with pytest.raises(SparkEnvironmentError, match=re.escape("needs Databricks 'dbutils'")):
        Secret.from_dbutils("scope", "key")


def test_from_dbutils_uses_builtins_dbutils(monkeypatch: pytest.MonkeyPatch) -> None:
    class FakeSecrets:
        def getBytes(self, scope: str, key: str) -> bytes:  # noqa: N802 - Databricks API name
            if (scope, key) != ("room", "join"):
                raise RuntimeError("Secret does not exist")
            return KEY

    class FakeDbutils:
        secrets = FakeSecrets()

    monkeypatch.setattr(builtins, "dbutils", FakeDbutils(), raising=False)
    secret = Secret.from_dbutils("room", "join")
    assert secret == Secret.from_bytes(KEY)
    assert repr(secret) == "Secret(source='dbutils:room/join', length=40)"
    with pytest.raises(
        MissingSecretError, match=re.escape("cannot read secret 'other' in scope 'room'")
    ):
        Secret.from_dbutils("room", "other")


def test_repr_str_format_and_logs_never_show_key(caplog: pytest.LogCaptureFixture) -> None:
    secret = Secret.from_bytes(KEY)
    caplog.set_level(logging.DEBUG)
    logging.getLogger("cleanjoin.test").info("secret is %s / %r / %s", secret, secret, f"{secret}")
    shown = [repr(secret), str(secret), f"{secret!r}", caplog.text, str(dir(secret))]
    for text in shown:
        for bad in _forbidden(KEY):
            assert bad not in text
    assert repr(secret) == "Secret(source='bytes', length=40)"


def test_secret_cannot_be_pickled_or_mutated() -> None:
    secret = Secret.from_bytes(KEY)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError, match=re.escape("Secret cannot be pickled")):
            pickle.dumps(secret, protocol=protocol)
    with pytest.raises(AttributeError, match="immutable"):
        secret.other = 1  # type: ignore[attr-defined]
    assert copy.copy(secret) is secret
    assert copy.deepcopy({"s": secret})["s"] is secret
    assert not hasattr(secret, "__dict__")


def test_cloudpickle_refuses_too() -> None:
    cloudpickle: Any = pytest.importorskip("pyspark.cloudpickle")
    secret = Secret.from_bytes(KEY)
    with pytest.raises(TypeError, match=re.escape("Secret cannot be pickled")):
        cloudpickle.dumps(lambda: secret)
