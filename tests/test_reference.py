"""The pure-Python reference implementation of token spec v1, and the published document."""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from pathlib import Path

import pytest

from cleanjoin import reference

DOC = Path(__file__).resolve().parents[1] / "docs" / "token-spec.md"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" 4111 1111 1111 1111 ", "4111111111111111"),
        ("4111-1111-1111-1111\u200b", "4111111111111111"),
        ("\u00a04111111111111111\u3000", "4111111111111111"),
        ("４１１１１１１１１１１１１１１１", "4111111111111111"),
        ("\x1c0004111111111111\x1f", "0004111111111111"),
        ("4111\u00ad1111\u20601111\ufeff1111", "4111111111111111"),
        ("4111\u2028111111111111", "4111111111111111"),
        ("411111111111", "411111111111"),  # 12 digits
        ("4" * 19, "4" * 19),
        ("41111111111", None),  # 11 digits
        ("4" * 20, None),
        ("4111 1111 1111 111x", None),
        ("٤١١١١١١١١١١١١١١١", None),  # Arabic-Indic digits are not ASCII after NFKC
        ("   ", None),
        ("\u200b", None),
        ("", None),
        (None, None),
    ],
)
def test_pan_normalization(raw: str | None, expected: str | None) -> None:
    assert reference.normalize(raw, "pan") == expected


def test_email_and_text_normalization() -> None:
    assert reference.normalize("  Alice@Example.COM\u3000", "email") == "alice@example.com"
    assert reference.normalize("İstanbul@x.tr", "email") == "i̇stanbul@x.tr"
    assert reference.normalize("STRASSE ß", "email") == "strasse ß"
    assert reference.normalize("ﬁ Ａb ²", "text") == "fi Ab 2"
    assert reference.normalize("a\u2003 b", "text") == "a  b"  # inner spaces kept
    assert reference.normalize("\x1d\x1e", "text") is None


def test_token_is_hmac_sha256_of_normalized_utf8() -> None:
    key = b"k" * 32
    expected = hmac.new(key, "straße@x.de".encode(), hashlib.sha256).hexdigest()
    assert reference.token(" STRAßE@X.DE ", key, "email") == expected
    assert reference.token("   ", key, "text") is None
    assert re.fullmatch(r"[0-9a-f]{64}", reference.token("x", key, "text") or "")


def test_unknown_preset_is_refused() -> None:
    with pytest.raises(ValueError, match=re.escape('Unknown token preset "phone"')):
        reference.normalize("1", "phone")


def test_check_value_definition() -> None:
    key = bytes(range(32))
    assert (
        reference.check_value(key)
        == hmac.new(key, b"cleanjoin key check value v1", hashlib.sha256).hexdigest()[:12]
    )


def test_fingerprints_differ_and_are_stable() -> None:
    fps = {p: reference.fingerprint(p) for p in reference.PRESETS}
    assert len(set(fps.values())) == 3
    assert all(re.fullmatch(r"[0-9a-f]{16}", f) for f in fps.values())
    with pytest.raises(ValueError, match="Unsupported token spec version 2"):
        reference.fingerprint("pan", version=2)


def test_reference_uses_only_the_standard_library() -> None:
    source = Path(reference.__file__).read_text()
    imports = set(re.findall(r"^(?:import|from) ([\w.]+)", source, flags=re.M))
    assert imports <= {"__future__", "hashlib", "hmac", "json", "re", "unicodedata", "typing"}


# -- the published document must say exactly what the code does ------------------------------
def test_document_states_version_constant_and_fingerprints() -> None:
    text = DOC.read_text()
    assert "version 1" in text
    assert reference.CHECK_VALUE_MESSAGE.decode() in text
    for preset in reference.PRESETS:
        assert f"| `{reference.fingerprint(preset)}` |" in text
    assert reference.canonical_json(reference.spec_document("pan")) in text
    removed = " ".join(f"U+{ord(c):04X}" for c in reference.REMOVED_CHARACTERS)
    for code in removed.split():
        assert code in text


def test_document_whitespace_list_is_python_isspace() -> None:
    text = DOC.read_text()
    for ch in (chr(c) for c in range(0x80, 0x3001)):
        if ch.isspace():
            code = f"U+{ord(ch):04X}"
            in_range = code in text or any(
                int(a, 16) <= ord(ch) <= int(b, 16)
                for a, b in re.findall(r"U\+([0-9A-F]{4})–U\+([0-9A-F]{4})", text)
            )
            assert in_range, code


def test_document_code_equals_reference() -> None:
    block = re.search(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert block is not None
    namespace: dict[str, object] = {}
    exec(block.group(1), namespace)
    corpus = [
        None,
        "",
        " ",
        "４１１１-1111 1111 1111",
        "\u00a04111111111111111",
        "Straße@X",
        "İ",
        "a\u200bb",
        "\x1cx\x1f",
        "ﬁ²",
        "e\u0301",
        "0004111111111111\u2029",
        "٤١١١",
    ]
    key = bytes(range(40))
    for preset in reference.PRESETS:
        for value in corpus:
            assert namespace["normalize"](value, preset) == reference.normalize(value, preset)  # type: ignore[operator]
            assert namespace["token"](value, key, preset) == reference.token(value, key, preset)  # type: ignore[operator]
    assert namespace["check_value"](key) == reference.check_value(key)  # type: ignore[operator]


def test_nfkc_is_applied_before_stripping() -> None:
    # U+2000 is whitespace either way; U+FF0D full-width hyphen becomes "-" only after NFKC
    assert unicodedata.normalize("NFKC", "\uff0d") == "-"
    assert reference.normalize("4111\uff0d1111\uff0d1111\uff0d1111", "pan") == "4111111111111111"
