"""The refinement guard: differencing across recorded threshold releases, end to end on
real Spark and Delta in both session modes, with hand-computed answers.

A curious analyst releases ``group_by(age_band)``, then ``group_by(age_band, country)``
and subtracts: an age band's count minus its released sub-cells is the count of its
suppressed sub-cells. The guard suppresses more cells so that this remainder is 0 or
at least the floor, counted in distinct people.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from cleanjoin import agg
from cleanjoin.audit import AuditLog
from cleanjoin.budget import BudgetLedger
from cleanjoin.consent import ConsentPolicy
from cleanjoin.contract import GROUPING_COLUMN
from cleanjoin.errors import InvalidArgumentError, LedgerConflictError, LedgerTampered
from cleanjoin.guard import GuardedJoin
from cleanjoin.policy import CollaborationPolicy

FLOOR = 3
LEFT_SCHEMA = "card_number_token string, country string, flag string"
RIGHT_SCHEMA = "card_number_token string, age_band string"


def tok(i: int) -> str:
    """A fake 64-hex token for person ``i``."""
    return hashlib.sha256(f"refine-person-{i}".encode()).hexdigest()


# people per (age band, countries): a person listed with two countries has one left row in
# each (one person in two sub-cells); everyone has one right row (their age band)
PEOPLE: list[tuple[str, tuple[str, ...], int]] = [
    ("18-25", ("DE",), 1),  # a sub-cell of one person: the attack's target
    ("18-25", ("FR",), 4),
    ("18-25", ("US",), 5),
    ("26-35", ("DE",), 3),  # no sub-cell suppressed: remainder 0
    ("26-35", ("FR",), 3),
    ("36-45", ("DE",), 2),  # two suppressed sub-cells of 2 and 2 people: remainder 4
    ("36-45", ("FR",), 2),
    ("36-45", ("US",), 4),
    ("46-55", ("DE", "FR"), 2),  # the same 2 people in DE and FR: remainder 2, not 4
    ("46-55", ("US",), 5),
]
BAND_PEOPLE = {"18-25": 10, "26-35": 6, "36-45": 8, "46-55": 7}


def frames(spark: Any) -> tuple[Any, Any]:
    left: list[tuple[Any, ...]] = []
    right: list[tuple[Any, ...]] = []
    person = 0
    for band, countries, n in PEOPLE:
        for _ in range(n):
            left += [(tok(person), country, "Y") for country in countries]
            right.append((tok(person), band))
            person += 1
    return spark.createDataFrame(left, LEFT_SCHEMA), spark.createDataFrame(right, RIGHT_SCHEMA)


def ledger(tmp_path: Path, name: str = "ledger") -> BudgetLedger:
    return BudgetLedger(str(tmp_path / name), collaboration="refine-test", total_epsilon=1.0,
                        total_delta=1e-5)


def by(join: GuardedJoin, *columns: str) -> Any:
    return join.group_by(*columns).agg(agg.count().alias("n")).min_cohort(FLOOR)


def cells(result: Any, *columns: str) -> dict[tuple[Any, ...], int]:
    return {tuple(r[c] for c in columns): r["n"] for r in result.df.collect()}


def remainders(coarse: dict[tuple[Any, ...], int], fine: dict[tuple[Any, ...], int]) -> dict[Any, int]:
    """The attack: each released band's count minus its released sub-cells' counts."""
    return {
        band: n - sum(m for (b, _c), m in fine.items() if b == band)
        for (band,), n in coarse.items()
    }


def test_a_refinement_whose_remainder_is_one_person_suppresses_more(
    spark: Any, tmp_path: Path
) -> None:
    join = GuardedJoin(*frames(spark), on="card_number_token")
    budget = ledger(tmp_path)
    first = by(join, "age_band").run(budget=budget, release_id="by-band")
    coarse = cells(first, "age_band")
    # rows: 46-55 has 2 people with 2 rows each
    assert coarse == {("18-25",): 10, ("26-35",): 6, ("36-45",): 8, ("46-55",): 9}
    assert first.report.groups_suppressed_refinement == 0  # nothing earlier to refine

    second = by(join, "age_band", "country").run(budget=budget, release_id="by-band-country")
    fine = cells(second, "age_band", "country")
    # 18-25: DE (1 person) is suppressed, and FR (4, the smallest released sibling) too:
    #   the remainder is 5 people, not 1;
    # 26-35: nothing suppressed (remainder 0), nothing more;
    # 36-45: DE and FR (2 + 2 people) suppressed: remainder 4 >= 3, nothing more;
    # 46-55: DE and FR hold the same 2 people: remainder 2 (not 4), so US goes too
    assert fine == {("18-25", "US"): 5, ("26-35", "DE"): 3, ("26-35", "FR"): 3,
                    ("36-45", "US"): 4}
    report = second.report
    assert (report.groups_released, report.groups_suppressed) == (4, 5)
    assert report.groups_suppressed_refinement == 2
    assert "2 more (refinement" in str(report)
    # the curious analyst's subtraction isolates no one: 0 or >= 3 people in every band
    assert remainders(coarse, fine) == {"18-25": 5, "26-35": 0, "36-45": 4, "46-55": 9}
    # both releases are recorded, and spend nothing
    assert [r.release_id for r in budget.threshold_releases(spark=spark)] == [
        "by-band", "by-band-country"]
    assert budget.remaining(spark=spark) == (1.0, 1e-5)
    assert budget.charges(spark=spark) == []

    # without the ledger the same release gives the one person away (the test can fail)
    free = cells(by(join, "age_band", "country").run(), "age_band", "country")
    assert remainders(coarse, free)["18-25"] == 1


def test_a_rollup_alone_hides_no_union_of_suppressed_sub_cells_below_the_floor(
    spark: Any, tmp_path: Path
) -> None:
    # no ledger: the release's own band margins are what the analyst subtracts from
    join = GuardedJoin(*frames(spark), on="card_number_token")
    audit = AuditLog(str(tmp_path / "audit"), actor="test", spark=spark)
    rollup = (join.group_by("age_band", "country").rollup().agg(agg.count().alias("n"))
              .min_cohort(FLOOR).run(audit=audit))
    rows = rollup.df.collect()
    bands = {(r["age_band"],): r["n"] for r in rows if r[GROUPING_COLUMN] == 1}
    fine = {(r["age_band"], r["country"]): r["n"] for r in rows if r[GROUPING_COLUMN] == 0}
    # 18-25: DE (1 person, primary) and FR (its smallest sibling: a single hidden cell
    # would be recomputable); 36-45: DE and FR (2 + 2 people); 46-55: DE and FR hold the
    # same 2 people, so the band minus US would give those 2: US (5 people) goes too
    assert fine == {("18-25", "US"): 5, ("26-35", "DE"): 3, ("26-35", "FR"): 3,
                    ("36-45", "US"): 4}
    assert bands == {("18-25",): 10, ("26-35",): 6, ("36-45",): 8, ("46-55",): 9}
    report = rollup.report
    assert (report.groups_suppressed, report.groups_suppressed_secondary) == (5, 2)
    assert report.groups_suppressed_refinement is None  # no ledger: no refinement guard
    (entry,) = audit.entries(spark=spark)
    assert {k: entry.parameters[k] for k in (
        "groups_released", "groups_suppressed", "groups_suppressed_secondary",
        "groups_suppressed_dominance", "groups_suppressed_refinement")} == {
        "groups_released": 9, "groups_suppressed": 5, "groups_suppressed_secondary": 2,
        "groups_suppressed_dominance": None, "groups_suppressed_refinement": None}
    # the analyst's subtraction, in rows: 46-55 would give 4 rows (2 people) without the rule
    assert remainders(bands, fine) == {"18-25": 5, "26-35": 0, "36-45": 4, "46-55": 9}


def test_a_rollup_refining_an_earlier_release_reruns_the_secondary_suppression(
    spark: Any, tmp_path: Path
) -> None:
    join = GuardedJoin(*frames(spark), on="card_number_token")
    budget = ledger(tmp_path)
    by(join, "age_band").run(budget=budget, release_id="by-band")
    rollup = (join.group_by("age_band", "country").rollup().agg(agg.count().alias("n"))
              .min_cohort(FLOOR).run(budget=budget, release_id="rollup"))
    got = {(r[GROUPING_COLUMN], r["age_band"], r["country"]) for r in rollup.df.collect()}
    # within the release: 18-25 DE (1 person) and FR (its smallest sibling, secondary);
    # 36-45 and 46-55 DE and FR (primary). Against the earlier bands: 46-55's DE and FR
    # hold the same 2 people, so US goes too; every margin is released
    assert got == {(0, "18-25", "US"), (0, "26-35", "DE"), (0, "26-35", "FR"),
                   (0, "36-45", "US"), (1, "18-25", None), (1, "26-35", None),
                   (1, "36-45", None), (1, "46-55", None), (3, None, None)}
    report = rollup.report
    assert (report.groups_suppressed, report.groups_suppressed_secondary) == (5, 1)
    assert report.groups_suppressed_refinement == 1
    # a plain release after the rollup meets its bands and its grand total (an empty
    # grouping set): the bands ask for what the first test found, the total (16 people
    # hidden) for nothing more
    fine = by(join, "age_band", "country").run(budget=budget, release_id="fine")
    assert set(cells(fine, "age_band", "country")) == {
        ("18-25", "US"), ("26-35", "DE"), ("26-35", "FR"), ("36-45", "US")}
    assert fine.report.groups_suppressed_refinement == 2


def test_the_ledger_and_the_audit_hold_no_value_or_token(spark: Any, tmp_path: Path) -> None:
    join = GuardedJoin(*frames(spark), on="card_number_token")
    budget = ledger(tmp_path)
    log = AuditLog(str(tmp_path / "audit"), spark=spark)
    by(join, "age_band").run(budget=budget, release_id="by-band", audit=log)
    by(join, "age_band", "country").run(budget=budget, release_id="fine", audit=log)
    replay = by(join, "age_band").run(budget=budget, release_id="by-band", audit=log)
    assert replay.report.replayed
    rows = spark.read.format("delta").load(str(tmp_path / "ledger")).collect()
    assert [r["kind"] for r in rows if r["collaboration"] == "refine-test"] == [
        "threshold", "threshold"]
    text = repr(rows) + repr([e.to_dict() for e in log.entries(spark=spark)])
    values = [q + v + q for v in ("18-25", "26-35", "DE", "FR", "US") for q in "'\""]
    assert [v for v in [*values, *(tok(i) for i in range(31))] if v in text] == []
    assert all(float(r["epsilon"]) == 0.0 and float(r["delta"]) == 0.0 for r in rows)


def test_coarser_after_finer_is_checked_too(spark: Any, tmp_path: Path) -> None:
    join = GuardedJoin(*frames(spark), on="card_number_token")
    budget = ledger(tmp_path)
    first = by(join, "age_band", "country").run(budget=budget, release_id="fine")
    fine = cells(first, "age_band", "country")
    assert first.report.groups_suppressed_refinement == 0
    assert ("18-25", "DE") not in fine
    assert ("18-25", "FR") in fine
    second = by(join, "age_band").run(budget=budget, release_id="coarse")
    coarse = cells(second, "age_band")
    # 18-25 minus the released FR and US is DE (1 person): the band is suppressed;
    # 46-55 minus US is the 2 people of DE/FR: suppressed; 26-35 (remainder 0) and
    # 36-45 (remainder 4 people) stay
    assert coarse == {("26-35",): 6, ("36-45",): 8}
    assert second.report.groups_suppressed_refinement == 2
    assert all(n == 0 or n >= FLOOR for n in remainders(coarse, fine).values())


def test_a_different_filter_or_input_is_not_matched(spark: Any, tmp_path: Path) -> None:
    left, right = frames(spark)
    budget = ledger(tmp_path)
    consented = GuardedJoin(left, right, on="card_number_token",
                            consent=ConsentPolicy(side="left", consent_column="flag",
                                                  allowed_values=("Y",)))
    by(consented, "age_band").run(budget=budget, release_id="consented")
    # the same rows (every flag is "Y"), but another filter: not the same release scope,
    # so only DP covers this difference (docs/disclosure.md)
    plain = GuardedJoin(left, right, on="card_number_token")
    second = by(plain, "age_band", "country").run(budget=budget, release_id="plain")
    assert second.report.groups_suppressed_refinement == 0
    assert ("18-25", "FR") in cells(second, "age_band", "country")
    # another join column: another input
    renamed = GuardedJoin(left.withColumnRenamed("card_number_token", "t"),
                          right.withColumnRenamed("card_number_token", "t"), on="t")
    third = by(renamed, "age_band", "country").run(budget=budget, release_id="renamed")
    assert third.report.groups_suppressed_refinement == 0


def test_replay_returns_the_recorded_release(spark: Any, tmp_path: Path) -> None:
    join = GuardedJoin(*frames(spark), on="card_number_token")
    budget = ledger(tmp_path)
    query = by(join, "age_band")
    first = query.run(budget=budget, release_id="weekly")
    again = query.run(budget=budget, release_id="weekly")
    assert again.report.replayed
    assert sorted(again.df.collect()) == sorted(first.df.collect())
    assert len(budget.threshold_releases(spark=spark)) == 1  # recorded once
    with pytest.raises(InvalidArgumentError, match=re.escape("already used by a different query")):
        by(join, "age_band", "country").run(budget=budget, release_id="weekly")
    with pytest.raises(InvalidArgumentError, match=re.escape("is a threshold release")):
        query.with_dp(epsilon=0.5, delta=1e-6).run(budget=budget, release_id="weekly")
    assert budget.remaining(spark=spark) == (1.0, 1e-5)  # the refused DP run spent nothing


def _policy(tables: dict[str, str], **changes: Any) -> CollaborationPolicy:
    document: dict[str, Any] = {
        "format": "cleanjoin.policy/v1",
        "name": "refine-test",
        "parties": {
            "provider": {"table": tables["left"], "join_column": "card_number_token",
                         "dimensions": ["country"], "measures": {}},
            "consumer": {"table": tables["right"], "join_column": "card_number_token",
                         "dimensions": ["age_band"], "measures": {}},
        },
        "privacy_unit": "card_number_token",
        "min_cohort": FLOOR,
        "budget": {"ledger": tables["ledger"], "total_epsilon": 1.0, "total_delta": 1e-5},
        "dominance": None,
        "p_percent": None,
    }
    document.update(changes)
    return CollaborationPolicy.from_dict(document)


@pytest.mark.parametrize("guard", [True, False], ids=["default", "off"])
def test_policy_records_every_threshold_release_unless_the_guard_is_off(
    spark: Any, tmp_path: Path, guard: bool
) -> None:
    left, right = frames(spark)
    tables = {name: str(tmp_path / name) for name in ("left", "right", "ledger")}
    left.write.format("delta").save(tables["left"])
    right.write.format("delta").save(tables["right"])
    policy = _policy(tables) if guard else _policy(tables, refinement_guard=False)
    assert policy.refinement_guard is guard
    join = GuardedJoin.from_policy(policy, spark=spark, fingerprint=policy.fingerprint)
    log = AuditLog(str(tmp_path / "audit"), spark=spark)
    coarse = cells(by(join, "age_band").run(audit=log), "age_band")  # no release_id, budget=
    second = by(join, "age_band", "country").run()
    fine = cells(second, "age_band", "country")
    budget = BudgetLedger(tables["ledger"], collaboration="refine-test", total_epsilon=1.0,
                          total_delta=1e-5, spark=spark)
    if guard:
        assert second.report.groups_suppressed_refinement == 2
        assert remainders(coarse, fine)["18-25"] == 5
        releases = budget.threshold_releases()
        assert len(releases) == 2
        assert all(r.release_id.startswith("auto-") for r in releases)
        assert releases[0].group_by == ("age_band",)
        assert all(r.query_fingerprint != r.scope for r in releases)
        # the automatic release id passes the audit log's leak scanner
        assert [e.parameters["release_id"] for e in log.entries()] == [releases[0].release_id]
    else:
        assert second.report.groups_suppressed_refinement is None
        assert remainders(coarse, fine)["18-25"] == 1  # the attack works: only DP stops it
        assert budget.threshold_releases() == []


def test_attack_deleting_a_cell_from_an_earlier_stored_release(spark: Any, tmp_path: Path) -> None:
    join = GuardedJoin(*frames(spark), on="card_number_token")
    budget = ledger(tmp_path)
    by(join, "age_band").run(budget=budget, release_id="by-band")
    # the stored rows of "by-band" (docs/policy.md: <ledger>_releases/<digest>), rewritten
    # without the 18-25 band so that the guard would not see it as released
    digest = hashlib.sha256(json.dumps(["refine-test", "by-band"]).encode()).hexdigest()[:40]
    stored = str(tmp_path / "ledger") + f"_releases/{digest}"
    frame = spark.read.format("delta").load(stored)
    kept = spark.createDataFrame(frame.where("age_band != '18-25'").collect(), frame.schema)
    kept.write.format("delta").mode("overwrite").save(stored)
    with pytest.raises(LedgerTampered, match=re.escape("not the ones the ledger recorded")):
        by(join, "age_band", "country").run(budget=budget, release_id="fine")
    assert [r.release_id for r in budget.threshold_releases(spark=spark)] == ["by-band"]


def test_attack_racing_two_releases_so_neither_checks_the_other(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The analyst starts the fine release and, while it computes, records the coarse one
    # (two notebooks, or two threads): neither run saw the other's entry when it checked.
    # The race is made deterministic by running the coarse release (a real run) just
    # before the fine one records itself.
    import cleanjoin.guard._execute as execute

    join = GuardedJoin(*frames(spark), on="card_number_token")
    budget = ledger(tmp_path)
    real = execute.record_threshold
    raced: list[str] = []

    def record_after_the_race(*args: Any, **kwargs: Any) -> str:
        if not raced:
            raced.append("by-band")
            by(join, "age_band").run(budget=budget, release_id="by-band")
        return real(*args, **kwargs)

    monkeypatch.setattr(execute, "record_threshold", record_after_the_race)
    with pytest.raises(LedgerConflictError, match="under a new release_id"):
        by(join, "age_band", "country").run(budget=budget, release_id="fine-1")
    monkeypatch.setattr(execute, "record_threshold", real)
    # nothing of the refused run is recorded or returned; run again, it is checked
    assert [r.release_id for r in budget.threshold_releases(spark=spark)] == ["by-band"]
    again = by(join, "age_band", "country").run(budget=budget, release_id="fine-2")
    assert again.report.groups_suppressed_refinement == 2
    coarse = cells(by(join, "age_band").run(budget=budget, release_id="by-band"), "age_band")
    assert remainders(coarse, cells(again, "age_band", "country"))["18-25"] == 5
