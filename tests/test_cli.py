from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cleanjoin.cli import build_parser
from cleanjoin.synth import luhn_valid


def test_demo_parser_defaults() -> None:
    args = build_parser().parse_args(["demo"])
    assert args.rows == 300_000
    assert args.connect is False


@pytest.mark.slow
def test_demo_runs_end_to_end_and_its_audit_export_leaks_nothing(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cleanjoin.cli", "demo", "--rows", "20000", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=1200, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    from cleanjoin.vectors import corpus

    every_vector = f"test vectors verified : {len(corpus('pan'))}"
    from cleanjoin.demo import demo_policy

    approved = demo_policy(tmp_path).fingerprint  # the demo ran under its policy
    for line in ("cleanjoin demo summary", "groups released", every_vector,
                 "epsilon spent / left  : 1 / 4", "audit log",
                 f"policy fingerprint    : {approved[:16]}…",
                 "outputs verified      : 2 of 2"):
        assert line in out
    assert (tmp_path / "fraud_segments" / "_delta_log").is_dir()
    # the other party checks an output with the CLI verb: sealed under the policy, unchanged
    check = subprocess.run(
        [sys.executable, "-m", "cleanjoin.cli", "verify-output", str(tmp_path / "fraud_segments_dp"),
         "--policy-fingerprint", approved, "--audit", str(tmp_path / "audit")],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert check.returncode == 0, check.stderr[-3000:]
    assert check.stdout.startswith("OK: ")
    assert (tmp_path / "fraud_segments_dp" / "_delta_log").is_dir()

    from cleanjoin._auditverify import verify_file
    from cleanjoin.demo import demo_secret

    export = tmp_path / "audit.jsonl"
    assert verify_file(export).ok
    text = export.read_text(encoding="utf-8")
    # no key material
    key = demo_secret()._Secret__key  # the demo key is public by design
    for form in (key.hex(), base64.b64encode(key).decode()):
        assert form not in text
    # no raw PAN (a Luhn-valid 12-19 digit run) and no e-mail address. A digest's hex holds
    # digit runs by chance (one in ten of them Luhn-valid), so hex runs with a letter in them
    # go first; a PAN has no letter and is never removed.
    digestless = re.sub(r"(?<![0-9a-f])(?=[0-9a-f]*[a-f])[0-9a-f]{16,}(?![0-9a-f])", "#", text)
    for run in re.findall(r"(?<!\d)\d{12,19}(?!\d)", digestless):
        assert not luhn_valid(run)
    assert not re.search(r"[\w.+-]+@[\w-]+\.[\w.]+", text)
    # no token: every token of both gold tables, read straight from their Parquet files
    import pyarrow.parquet as pq

    tokens: set[str] = set()
    for table in ("provider_gold", "consumer_gold"):
        for part in (tmp_path / table).glob("*.parquet"):
            column = pq.read_table(part, columns=["card_number_token"]).column(0)
            tokens.update(t for t in column.to_pylist() if t)
    assert len(tokens) > 1000
    hexes = set(re.findall(r"[0-9a-f]{64}", text))
    assert not hexes & tokens


def test_contract_check_prints_the_fingerprint_and_compares_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cleanjoin.cli import main
    from cleanjoin.contract import ContractColumn, OutputContract

    contract = OutputContract(
        columns=(ContractColumn("segment", "string", "dimension"),
                 ContractColumn("n", "bigint", "cohort_count")),
        min_cohort=100, name="segments", version="2",
    )
    path = contract.save(tmp_path / "segments.yaml")
    assert main(["contract", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"fingerprint  : {contract.fingerprint()}" in out
    assert "n bigint (cohort_count)" in out
    assert "min cohort   : 100 distinct privacy units" in out
    approved = contract.fingerprint().upper()
    assert main(["contract", "check", str(path), "--fingerprint", approved]) == 0
    assert "fingerprint matches" in capsys.readouterr().out
    other = OutputContract(columns=contract.columns, min_cohort=10).fingerprint()
    assert main(["contract", "check", str(path), "--fingerprint", other]) == 1
    assert "MISMATCH" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"min_cohort": 0, "columns": []}', encoding="utf-8")
    assert main(["contract", "check", str(bad)]) == 3
    assert "invalid contract" in capsys.readouterr().err
