"""tokenize: spec equality with the reference, the HMAC core (RFC 4231), no key leaks,
validation before any work, and audit integration."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import io
import logging
import random
import re
import unicodedata
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cleanjoin import reference, tokens
from cleanjoin.errors import (
    ColumnNotFoundError,
    InvalidArgumentError,
    TokenSpecError,
    UnsupportedColumnTypeError,
)
from cleanjoin.secret import Secret
from cleanjoin.spec import TokenSpec
from cleanjoin.tokens import tokenize

KEY = bytes(range(7, 47))
SECRET = Secret.from_bytes(KEY)

# RFC 4231 test cases 1-4, 6 and 7 (key, data, HMAC-SHA256)
RFC4231 = [
    (b"\x0b" * 20, b"Hi There",
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 20, b"\xdd" * 50,
     "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (bytes(range(1, 26)), b"\xcd" * 50,
     "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    (b"\xaa" * 131,
     b"This is a test using a larger than block-size key and a larger than block-size data. "
     b"The key needs to be hashed before being used by the HMAC algorithm.",
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
]

_ALPHABET = (
    list("0123456789") * 4
    + list(" -\t\n\x0b\x0c\r\x1c\x1d\x1e\x1fabcXYZ@._")
    + [chr(c) for c in (0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000)]
    + [chr(c) for c in range(0x2000, 0x200B)]
    + list(reference.REMOVED_CHARACTERS)
    + ["\u0301", "\u0308", "\u0327", "e\u0301", "１", "９", "－", "Ａ", "ｚ", "＠", "．"]
    + ["ﬁ", "ﬂ", "²", "¹", "½", "İ", "ı", "ß", "ẞ", "Σ", "ς", "Å", "Å", "ｶ", "ﾞ", "٣", "𝟘", "😀", "\x00"]
    # digit forms that only pan maps (superscript, subscript, circled 1-50, mathematical,
    # segmented) and look-alikes that stay invalid (parenthesized, full stop, dingbat)
    + ["⁰", "₇", "①", "⓪", "⑩", "⑳", "㉑", "㊿", "𝟗", "🯵", "\ufe63", "⑴", "⒈", "❿", "➀"]
)


def _corpus(n: int, seed: int) -> list[str | None]:
    rng = random.Random(seed)
    values: list[str | None] = [None, "", " ", "\u3000", "\u200b", "4111111111111111"]
    for _ in range(n):
        length = rng.randint(0, 24)
        dirt = rng.choice([0.0, 0.05, 0.3, 0.8])
        values.append(
            "".join(rng.choice(_ALPHABET) if rng.random() < dirt else rng.choice("0123456789")
                    for _ in range(length))
        )
    return values


def _forbidden(key: bytes) -> list[str]:
    ipad, opad = tokens._pads(key)
    out = []
    for material in (key, ipad, opad):
        out += [material.hex(), material.hex().upper(), base64.b64encode(material).decode(),
                " ".join(f"{b:02X}" for b in material[:8])]
    return out


# -- pure Python ----------------------------------------------------------------------------------
def test_charwise_table_matches_unicodedata() -> None:
    for src, dst in zip(tokens._MAPPED_FROM, tokens._MAPPED_TO, strict=True):
        assert unicodedata.normalize("NFKC", src) == dst, hex(ord(src))
        assert unicodedata.normalize("NFKC", "A" + src + "A") == "A" + dst + "A"
    for ch in tokens._NFKC_STABLE_WHITESPACE:
        assert unicodedata.normalize("NFKC", ch) == ch
        assert ch.isspace()
    assert {c for c in map(chr, range(128)) if c.isspace()} == set(tokens.ASCII_WHITESPACE)


def test_pan_tables_cover_exactly_the_characters_a_valid_pan_can_hold() -> None:
    # every character whose NFKC form is made only of what a valid PAN may contain before
    # step 5 (ASCII digits, whitespace, "-", removed characters) must be mapped, exactly;
    # anything else makes the value invalid without Python
    allowed = set("0123456789-" + reference.REMOVED_CHARACTERS)
    derived: dict[str, str] = {}
    for cp in range(0x80, 0x110000):
        ch = chr(cp)
        if unicodedata.category(ch) == "Cn":
            continue
        form = unicodedata.normalize("NFKC", ch)
        if all(c in allowed or c.isspace() for c in form):
            derived[ch] = "".join(c for c in form if c in "0123456789")
    mapped = dict(zip(tokens._PAN_MAPPED_FROM, tokens._PAN_MAPPED_TO, strict=True))
    deleted = reference.REMOVED_CHARACTERS + tokens._NFKC_STABLE_WHITESPACE
    tables = {c: v.strip(" -") for c, v in mapped.items() if not c.isascii()}
    tables.update({c: "" for c in deleted})
    tables.update(dict(tokens._PAN_NUMBERS))
    pan_relevant = {c: v for c, v in tables.items() if c in derived}
    assert pan_relevant == derived  # Unicode 14.0 (Python 3.11); later versions only add
    for ch, out in tables.items():  # and every mapping agrees with NFKC, in context too
        assert reference.normalize("4111" + ch + "111111111111", "pan") in (None, "4111" + out + "111111111111")
    for ch, number in tokens._PAN_NUMBERS:
        assert unicodedata.normalize("NFKC", ch) == number


def test_pads_follow_rfc2104() -> None:
    for key, data, expected in RFC4231:
        ipad, opad = tokens._pads(key)
        inner = hashlib.sha256(ipad + data).digest()
        assert hashlib.sha256(opad + inner).hexdigest() == expected
        assert hmac.new(key, data, hashlib.sha256).hexdigest() == expected


# -- Spark ------------------------------------------------------------------------------------------
def test_hmac_core_rfc4231(spark_classic: Any) -> None:
    results = None
    for case, (key, data, _) in enumerate(RFC4231):
        df = spark_classic.createDataFrame([(case, bytearray(data))], "case int, message binary")
        one = tokens._hmac_hex(df, "message", key).select("case", "hmac")
        results = one if results is None else results.unionByName(one)
    assert results is not None
    got = {r["case"]: r["hmac"] for r in results.collect()}
    assert got == {case: expected for case, (_, _, expected) in enumerate(RFC4231)}


def test_tokens_equal_reference_on_random_corpus(spark: Any) -> None:
    values = _corpus(1500, seed=11)
    df = spark.createDataFrame(
        [(i, v, v, v) for i, v in enumerate(values)], "id int, pan string, email string, note string"
    )
    out = tokenize(df, {"pan": "pan", "email": "email", "note": TokenSpec.preset("text")}, secret=SECRET)
    assert out.columns == ["id", "pan_token", "email_token", "note_token"]
    rows = out.collect()
    assert len(rows) == len(values)
    mismatches = [
        (r["id"], preset)
        for r in rows
        for preset, col in (("pan", "pan_token"), ("email", "email_token"), ("text", "note_token"))
        if r[col] != reference.token(values[r["id"]], KEY, preset)
    ]
    assert mismatches == []
    valid = sum(r["pan_token"] is not None for r in rows)
    assert 50 < valid < len(values) - 50  # the corpus exercises both valid and invalid PANs


def test_known_pan_values(spark_classic: Any) -> None:
    raw = [" 4111 1111 1111 1111 ", "4111-1111-1111-1111\u200b", "\u00a04111111111111111\u3000",
           "４１１１１１１１１１１１１１１１", "4111111111111111", "411111111", "   ", "", None]
    df = spark_classic.createDataFrame([(i, v) for i, v in enumerate(raw)], "i int, card string")
    got = {r["i"]: r["card_token"] for r in tokenize(df, {"card": "pan"}, secret=SECRET).collect()}
    expected = hmac.new(KEY, b"4111111111111111", hashlib.sha256).hexdigest()
    assert [got[i] for i in range(5)] == [expected] * 5
    assert [got[i] for i in range(5, 9)] == [None] * 4


def test_columns_keep_position_and_others_pass_through(spark_classic: Any) -> None:
    df = spark_classic.createDataFrame([("a@x.com", 1, "4111111111111111", "n")],
                                       "email string, n int, pan string, `we.ird` string")
    out = tokenize(df, {"pan": "pan", "email": "email"}, secret=SECRET)
    assert out.columns == ["email_token", "n", "pan_token", "we.ird"]
    row = out.collect()[0]
    assert (row["n"], row["we.ird"]) == (1, "n")
    assert row["email_token"] == reference.token("a@x.com", KEY, "email")


def _physical_plan(df: Any) -> str:
    with contextlib.redirect_stdout(io.StringIO()) as buf:
        df.explain("extended")
    return buf.getvalue().split("== Physical Plan ==")[1]


def test_ascii_rows_never_reach_the_udf_with_a_value(spark_classic: Any) -> None:
    df = spark_classic.createDataFrame([("a@x.com",)], "email string")
    physical = _physical_plan(tokenize(df, {"email": "email"}, secret=SECRET))
    # the UDF's argument is the value only on the exotic path (3), a null otherwise ...
    udf_call = re.search(r"normalize\(CASE WHEN \(__cleanjoin_path_0#(\d+) = 3\) THEN email#\d+ END\)", physical)
    assert udf_call is not None
    # ... and the path is decided by the clean-value regex first, then the ASCII checks
    path = re.search(r"(CASE WHEN isnull\(email#\d+\) .*?) AS __cleanjoin_path_0#" + udf_call.group(1), physical, flags=re.S)
    assert path is not None
    branches = path.group(1)
    assert re.match(r"CASE WHEN isnull\(email#\d+\) THEN null WHEN RLIKE\(email#\d+, ", branches)
    assert branches.index("THEN 0 WHEN (length(email#") < branches.index("THEN 1 WHEN") < branches.index("THEN 2 ELSE 3 END")


def test_pan_runs_no_python(spark_classic: Any) -> None:
    df = spark_classic.createDataFrame([("4111111111111111", "a@x.com")], "pan string, email string")
    assert "EvalPython" not in _physical_plan(tokenize(df, {"pan": "pan"}, secret=SECRET))
    assert "ArrowEvalPython" in _physical_plan(tokenize(df, {"pan": "pan", "email": "email"}, secret=SECRET))


def test_no_key_material_in_plans_conf_logs(spark: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    df = spark.createDataFrame([("4111111111111111", "a@x.com")], "pan string, email string")
    out = tokenize(df, {"pan": "pan", "email": "email"}, secret=SECRET)
    texts = []
    for mode in ("simple", "extended", "codegen", "cost", "formatted"):
        with contextlib.redirect_stdout(io.StringIO()) as buf:
            out.explain(mode=mode)
        texts.append(buf.getvalue())
        assert "sha2" in buf.getvalue() or mode == "codegen"
    out.collect()
    texts.append(repr(out))
    conf_all = getattr(spark.conf, "getAll", None)  # Connect 3.5's RuntimeConf has none
    texts.append(str(conf_all if conf_all is not None else spark.sql("SET").collect()))
    texts.append(caplog.text)
    try:
        tokenize(df, {"nope": "pan"}, secret=SECRET)
    except ColumnNotFoundError as exc:
        texts.append(str(exc))
    joined = "\n".join(texts)
    for bad in _forbidden(KEY):
        assert bad not in joined
    assert "__cleanjoin_ipad" in joined  # the pads are there, as data


def test_a_literal_key_would_have_been_caught(spark_classic: Any) -> None:
    # the leak check can fail: a key passed as a literal shows in the plan
    funcs = tokens.functions_for(spark_classic)
    df = spark_classic.range(1).select(funcs.lit(bytearray(KEY)).alias("k"))
    with contextlib.redirect_stdout(io.StringIO()) as buf:
        df.explain("extended")
    assert any(bad in buf.getvalue() for bad in _forbidden(KEY))


def test_validation_errors_come_before_any_work(spark_classic: Any) -> None:
    df = spark_classic.createDataFrame([("1", 1, Decimal(2))], "s string, n bigint, d decimal(20,0)")
    with pytest.raises(ColumnNotFoundError, match=re.escape("tokenize: column 'pan' not found")):
        tokenize(df, {"pan": "pan"}, secret=SECRET)
    with pytest.raises(
        UnsupportedColumnTypeError,
        match=re.escape("tokenize: column 'n' has type bigint; only string columns can be tokenized"),
    ):
        tokenize(df, {"s": "text", "n": "pan"}, secret=SECRET)
    with pytest.raises(UnsupportedColumnTypeError, match=re.escape("decimal(20,0)")):
        tokenize(df, {"d": "pan"}, secret=SECRET)
    with pytest.raises(TokenSpecError, match=re.escape('Available options are "pan", "email", "text"')):
        tokenize(df, {"s": "phone"}, secret=SECRET)
    with pytest.raises(InvalidArgumentError, match=re.escape("'secret' in tokenize must be a cleanjoin.Secret")):
        tokenize(df, {"s": "text"}, secret=KEY)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match=re.escape("non-empty mapping")):
        tokenize(df, {}, secret=SECRET)
    clash = spark_classic.createDataFrame([("1", "x")], "s string, s_token string")
    with pytest.raises(InvalidArgumentError, match=re.escape("output column 's_token' for 's' already exists")):
        tokenize(clash, {"s": "text"}, secret=SECRET)


def test_audit_entry(spark_classic: Any, tmp_path: Path) -> None:
    from cleanjoin import audit as audit_mod  # a broken import must fail, not skip

    log = audit_mod.AuditLog(str(tmp_path / "audit"), spark=spark_classic, actor="tests")
    df = spark_classic.createDataFrame([("4111111111111111",), ("bad",), (None,)], "pan string")
    out = tokenize(df, {"pan": "pan"}, secret=SECRET, audit=log)
    assert out.columns == ["pan_token"]
    entries = spark_classic.read.format("delta").load(str(tmp_path / "audit")).collect()
    assert len(entries) == 1
    text = str(entries[0].asDict())
    assert "tokenize" in text
    assert SECRET.check_value() in text
    assert TokenSpec.preset("pan").fingerprint() in text
    assert '"null_tokens":{"pan_token":2}' in text.replace(" ", "")
    assert reference.token("4111111111111111", KEY, "pan") not in text
