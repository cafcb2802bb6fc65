"""Test vectors: the canonical corpus, the CSV format, and `cleanjoin vectors` verify in Spark."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from cleanjoin import reference, vectors
from cleanjoin.cli import main
from cleanjoin.errors import InvalidArgumentError, TokenSpecError
from cleanjoin.secret import Secret

KEY_HEX = "5a" * 32
SECRET = Secret.from_bytes(bytes.fromhex(KEY_HEX))


def test_pan_corpus_covers_the_issue_list() -> None:
    cases = dict(vectors.corpus("pan"))
    for brand in ("visa", "mastercard", "amex", "discover", "diners", "jcb", "unionpay", "maestro"):
        assert any(name.startswith(brand) for name in cases), brand
    lengths = {len(v) for n, v in cases.items() if v and re.fullmatch(r"[0-9]+", v)}
    assert set(range(12, 20)) <= lengths
    for ws in (chr(c) for c in range(0x110000)):
        if ws.isspace():
            assert f"leading-u{ord(ws):04x}" in cases
    for zw in reference.REMOVED_CHARACTERS:
        assert f"inside-u{ord(zw):04x}" in cases
    assert cases["null"] is None
    assert cases["empty"] == ""
    rows = vectors.generate("pan", SECRET)
    assert sum(r.token is None for r in rows) > 10
    assert sum(r.token is not None for r in rows) > 100
    assert [r.row for r in rows] == list(range(1, len(rows) + 1))


def test_csv_round_trip_makes_whitespace_visible(tmp_path: Path) -> None:
    path = tmp_path / "v.csv"
    count = vectors.write_csv(path, "email", SECRET)
    text = path.read_text(encoding="utf-8")
    assert text.isascii()  # every invisible or non-ASCII character is a \\u escape
    assert f"# key_check_value: {SECRET.check_value()}" in text
    parsed = vectors.read_csv(path)
    assert len(parsed.rows) == count
    assert parsed.rows == tuple(vectors.generate("email", SECRET))
    assert parsed.preset == "email"


def test_read_csv_errors(tmp_path: Path) -> None:
    path = tmp_path / "v.csv"
    with pytest.raises(InvalidArgumentError, match=re.escape("cannot be read")):
        vectors.read_csv(path)
    path.write_text("# preset: pan\nrow,case\n")
    with pytest.raises(InvalidArgumentError, match=re.escape("header lacks spec_version, spec_fingerprint")):
        vectors.read_csv(path)
    vectors.write_csv(path, "pan", SECRET)
    path.write_text(path.read_text().replace("# spec_version: 1", "# spec_version: 9"))
    with pytest.raises(TokenSpecError, match=re.escape("Unsupported token spec version 9")):
        vectors.read_csv(path)


def test_cli_generate_and_verify(
    spark_classic: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CJ_VECTORS_KEY", "hex:" + KEY_HEX)
    paths = {}
    for preset in ("pan", "email", "text"):
        paths[preset] = tmp_path / f"{preset}.csv"
        assert main(["vectors", "generate", "--preset", preset, "--out", str(paths[preset]),
                     "--secret-env", "CJ_VECTORS_KEY"]) == 0
    capsys.readouterr()
    # the Spark implementation reproduces every reference vector of every preset
    for preset, path in paths.items():
        result = vectors.verify(path, secret=SECRET, spark=spark_classic)
        assert result.ok, (preset, result)

    # a tampered row is reported by number, never by value
    pan = paths["pan"]
    lines = pan.read_text().split("\n")
    row5 = lines[7 + 4].split(",")
    row5[-1] = "0" * 64
    lines[7 + 4] = ",".join(row5)
    pan.write_text("\n".join(lines))
    assert main(["vectors", "verify", str(pan), "--secret-env", "CJ_VECTORS_KEY"]) == 1
    out = capsys.readouterr().out
    assert "token differs in rows: 5" in out
    assert "2221000000000009" not in out
    assert "0" * 64 not in out

    # another key: a distinct key check value message and exit code 2
    monkeypatch.setenv("CJ_VECTORS_KEY", "hex:" + "a5" * 32)
    assert main(["vectors", "verify", str(paths["email"]), "--secret-env", "CJ_VECTORS_KEY"]) == 2
    out = capsys.readouterr().out
    assert "KEY CHECK VALUE MISMATCH" in out
    assert "token differs" not in out

    # a missing key variable: exit 3 naming the variable
    monkeypatch.delenv("CJ_VECTORS_KEY")
    assert main(["vectors", "verify", str(paths["email"]), "--secret-env", "CJ_VECTORS_KEY"]) == 3
    assert "'CJ_VECTORS_KEY' is not set" in capsys.readouterr().err


def test_verify_detects_a_spec_fingerprint_mismatch(spark_classic: Any, tmp_path: Path) -> None:
    path = tmp_path / "v.csv"
    vectors.write_csv(path, "text", SECRET)
    path.write_text(path.read_text().replace(reference.fingerprint("text"), "0123456789abcdef"))
    with pytest.raises(TokenSpecError, match=re.escape("spec fingerprint 0123456789abcdef does not match")):
        vectors.verify(path, secret=SECRET, spark=spark_classic)
