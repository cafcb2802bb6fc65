"""TokenSpec: presets, versions, JSON round trip, fingerprints."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from cleanjoin import reference
from cleanjoin.errors import TokenSpecError
from cleanjoin.spec import TokenSpec


@pytest.mark.parametrize("name", ["pan", "email", "text"])
def test_presets_round_trip_and_fingerprint(name: str) -> None:
    spec = TokenSpec.preset(name)
    assert spec.version == 1
    assert TokenSpec.from_json(spec.to_json()) == spec
    assert spec.fingerprint() == reference.fingerprint(name)
    assert json.loads(spec.to_json())["preset"] == name


def test_spec_is_frozen() -> None:
    spec = TokenSpec.preset("pan")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "email"  # type: ignore[misc]


def test_unknown_preset_lists_options() -> None:
    with pytest.raises(
        TokenSpecError,
        match=re.escape(
            'Unknown token preset "phone". Available options are "pan", "email", "text".'
        ),
    ):
        TokenSpec.preset("phone")


def test_unsupported_version() -> None:
    with pytest.raises(TokenSpecError, match=re.escape("Unsupported token spec version 2")):
        TokenSpec("pan", 2)
    with pytest.raises(TokenSpecError, match=re.escape("'version' of TokenSpec must be an int")):
        TokenSpec("pan", True)


def test_from_json_refuses_altered_or_malformed_specs() -> None:
    data = json.loads(TokenSpec.preset("pan").to_json())
    data["hash"] = "SHA-1"
    with pytest.raises(TokenSpecError, match=re.escape("fields do not match the published spec")):
        TokenSpec.from_json(json.dumps(data))
    with pytest.raises(TokenSpecError, match=re.escape("not valid JSON")):
        TokenSpec.from_json("{")
    with pytest.raises(TokenSpecError, match=re.escape("expected a JSON object")):
        TokenSpec.from_json("[1]")


def test_parse_accepts_spec_or_name() -> None:
    spec = TokenSpec.preset("email")
    assert TokenSpec.parse(spec) is spec
    assert TokenSpec.parse("email") == spec
    with pytest.raises(TokenSpecError, match=re.escape("got int")):
        TokenSpec.parse(3)  # type: ignore[arg-type]
