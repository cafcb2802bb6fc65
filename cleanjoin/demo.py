"""The fraud-signal collaboration, end to end: what ``cleanjoin demo`` runs.

A card network (the *provider*, ``transaction_signals``) and a bank (the *consumer*,
``account_behavior``) join on the card number without seeing each other's raw data:

1. synthetic data for both parties (:mod:`cleanjoin.synth`), with realistic dirt;
2. a shared secret; both parties compare key check values and verify shared test vectors;
3. each party tokenizes its own side into a Delta "gold" table (:func:`cleanjoin.write_tokens`);
4. alignment profile and match report (:mod:`cleanjoin.alignment`);
5. partner agreements (consent) and opt-outs turned into a revocation list;
6. the collaboration policy both parties approved (:func:`demo_policy`): the guarded join
   and aggregate run under it (:meth:`cleanjoin.GuardedJoin.from_policy`), with its
   ``min_cohort(100)``, allowed columns and owner-fixed bounds;
7. the output contract review and a Delta output behind it;
8. a differentially private variant charged to the policy's privacy-budget ledger;
9. revocations applied to the provider's gold table;
10. the audit log exported and verified offline.

The same flow is the clean-room notebook (``notebooks/clean_room.ipynb``) and the full-flow
benchmark. Everything here is public API; read it as a worked example.

Example:
    >>> summary = run_demo(rows=20_000, out="/tmp/cj-demo")  # doctest: +SKIP
    >>> summary.groups_released > 0  # doctest: +SKIP
    True
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cleanjoin._profile import Profiler
from cleanjoin._typing import SparkSession

__all__ = ["DemoSummary", "demo_contract", "demo_policy", "demo_secret", "run_demo", "run_flow"]

SECRET_ENV = "CLEANJOIN_SECRET"
GROUP_BY = ("merchant_category_code", "account_age_band", "cross_border_flag")
MIN_COHORT = 100


@dataclass(frozen=True)
class DemoSummary:
    """What the demo did, in numbers safe to print (no values, no tokens, no key)."""

    mode: str
    rows_provider: int
    rows_consumer: int
    key_check_value: str
    vectors_verified: int
    match_rate: float
    provider_invalid: int
    groups_released: int
    groups_suppressed: int
    rows_excluded_consent: int
    output_table: str
    output_version: int
    dp_groups_released: int
    dp_output_table: str
    dp_output_version: int
    epsilon_spent: float
    epsilon_remaining: float
    revoked_rows_deleted: int
    audit_entries: int
    audit_head: str
    audit_export: str
    policy_fingerprint: str = ""
    outputs_verified: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [
            "cleanjoin demo summary",
            f"  session mode          : {self.mode}",
            f"  rows (provider/consumer): {self.rows_provider:,} / {self.rows_consumer:,}",
            f"  key check value       : {self.key_check_value}",
            f"  policy fingerprint    : {self.policy_fingerprint[:16]}…",
            f"  test vectors verified : {self.vectors_verified}",
            f"  match rate (consumer) : {self.match_rate:.1%}",
            f"  provider invalid PANs : {self.provider_invalid:,}",
            f"  rows excluded (consent/revoked): {self.rows_excluded_consent:,}",
            f"  groups released       : {self.groups_released} "
            f"(suppressed below {MIN_COHORT} cards: {self.groups_suppressed})",
            f"  output table          : {self.output_table} (Delta version {self.output_version})",
            f"  DP groups released    : {self.dp_groups_released}",
            f"  DP output table       : {self.dp_output_table} "
            f"(Delta version {self.dp_output_version})",
            f"  epsilon spent / left  : {self.epsilon_spent:g} / {self.epsilon_remaining:g}",
            f"  gold rows revoked     : {self.revoked_rows_deleted:,}",
            f"  audit log             : {self.audit_entries} entries, head "
            f"{self.audit_head[:16]}… ({self.audit_export})",
            f"  outputs verified      : {self.outputs_verified} of 2 (verify_output: sealed "
            "under the policy, unchanged)",
            "  step times            : "
            + ", ".join(f"{k} {v:.1f}s" for k, v in self.seconds.items()),
        ]
        return "\n".join(lines)


def demo_secret() -> Any:
    """The shared secret: ``$CLEANJOIN_SECRET`` if set, else a fixed *demo-only* key.

    The demo key is derived from a public constant so runs are reproducible; it protects
    nothing. Real collaborations exchange a random 32-byte key out of band and load it
    with ``Secret.from_env`` / ``from_file`` / ``from_dbutils``.
    """
    from cleanjoin.secret import Secret

    if os.environ.get(SECRET_ENV):
        return Secret.from_env(SECRET_ENV)
    return Secret.from_bytes(hashlib.sha256(b"cleanjoin demo key - not a secret").digest())


def demo_contract(*, dp: bool) -> Any:
    """The pre-approved output contract of the fraud-segment release."""
    from cleanjoin.contract import OutputContract

    columns = {
        "merchant_category_code": ("string", "dimension"),
        "account_age_band": ("string", "dimension"),
        "cross_border_flag": ("int", "dimension"),
        "record_count": ("bigint", "measure" if dp else "cohort_count"),
        "outcome_rate": ("double", "measure"),
        "avg_velocity_1h": ("double", "measure"),
    }
    return OutputContract.from_dict(
        {
            "name": "fraud-segments-dp" if dp else "fraud-segments",
            "version": 1,
            "columns": [
                {"name": n, "type": t, "role": r} for n, (t, r) in columns.items()
            ],
            "min_cohort": MIN_COHORT,
            "dp_required": dp,
        }
    )


def demo_policy(out: str | Path) -> Any:
    """The collaboration policy of the demo: the rules both parties approve, for the demo's
    tables under ``out`` (a real collaboration keeps this as a YAML file: see
    ``examples/fraud-consortium.policy.yaml`` and ``docs/policy.md``).

    Example:
        >>> demo_policy("/tmp/cj-demo").min_cohort
        100
    """
    from cleanjoin.policy import CollaborationPolicy

    base = Path(out)
    return CollaborationPolicy.from_dict(
        {
            "format": "cleanjoin.policy/v1",
            "name": "fraud-consortium",
            "version": 1,
            "parties": {
                "provider": {
                    "table": str(base / "provider_gold"),
                    "join_column": "card_number_token",
                    "dimensions": ["merchant_category_code", "cross_border_flag"],
                    "measures": {
                        "confirmed_fraud_flag": {"aggregates": ["sum", "mean"], "bounds": [0, 1]},
                        "txn_count_1h": {"aggregates": ["mean"], "bounds": [0, 50]},
                    },
                    "consent": {
                        "agreements": {"table": str(base / "agreements"), "region_column": "region"}
                    },
                    "revoked": str(base / "revocations"),
                },
                "consumer": {
                    "table": str(base / "consumer_gold"),
                    "join_column": "card_number_token",
                    "dimensions": ["account_age_band"],
                    "measures": {},
                },
            },
            "privacy_unit": "card_number_token",
            "min_cohort": MIN_COHORT,
            "dp": {"required": False, "max_epsilon": 1.0, "max_delta": 1e-6},
            "budget": {"ledger": str(base / "budget"), "total_epsilon": 5.0, "total_delta": 1e-5},
        }
    )


@contextmanager
def _step(
    name: str,
    progress: Callable[[str], None],
    seconds: dict[str, float],
    profiler: Profiler | None = None,
) -> Iterator[None]:
    progress(f"[cleanjoin] {name} ...")
    start = time.monotonic()
    if profiler is None:
        yield
    else:
        with profiler.step(name):
            yield
    seconds[name] = time.monotonic() - start
    progress(f"           done in {seconds[name]:.1f} s")


def run_flow(
    spark: SparkSession,
    *,
    rows: int = 300_000,
    cards: int | None = None,
    seed: int = 7,
    out: str | Path,
    progress: Callable[[str], None] = print,
    profiler: Profiler | None = None,
    sources: tuple[Any, Any] | None = None,
) -> DemoSummary:
    """Run the whole clean-room flow on ``spark`` and write everything under ``out``.

    With ``profiler`` (see :class:`cleanjoin._profile.Profiler`), each step is also
    recorded with the Spark jobs it ran. With ``sources``, the (provider, consumer) raw
    DataFrames, e.g. read from Parquet, replace the generated ones (the benchmark gives
    both flows it compares the same stored rows).
    """
    from cleanjoin import agg, alignment, synth, vectors
    from cleanjoin._spark import is_connect
    from cleanjoin.audit import AuditLog, verify_file
    from cleanjoin.budget import BudgetLedger
    from cleanjoin.guard import GuardedJoin
    from cleanjoin.revocation import apply_revocations, revocations_from_tokens
    from cleanjoin.tokens import tokenize, write_tokens

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cards = cards or max(rows // 6, 50)
    seconds: dict[str, float] = {}
    audit = AuditLog(str(out / "audit"), actor="cleanjoin-demo")

    with _step("shared secret and test vectors", progress, seconds, profiler):
        secret = demo_secret()
        vector_file = out / "pan-vectors.csv"
        vectors.write_csv(vector_file, "pan", secret)
        check = vectors.verify(vector_file, secret=secret, spark=spark)
        if not check.ok:
            raise RuntimeError(f"test vectors do not verify: {check}")

    with _step(f"generating {rows:,} provider rows and their accounts", progress, seconds,
               profiler):
        if sources is None:
            provider = synth.transaction_signals(spark, rows=rows, cards=cards, seed=seed)
            consumer = synth.account_behavior(
                spark, cards=max(cards // 2, 1_000), provider_cards=cards, seed=seed
            )
        else:
            provider, consumer = sources
        profile = alignment.profile(provider, "card_number", "pan")

    with _step("tokenizing each party's side into Delta gold tables", progress, seconds, profiler):
        provider_gold = str(out / "provider_gold")
        consumer_gold = str(out / "consumer_gold")
        # one job per side: the counts the audit records ride on the write
        rows_provider = write_tokens(
            provider, {"card_number": "pan"}, provider_gold, secret=secret, audit=audit
        ).rows
        rows_consumer = write_tokens(
            consumer, {"card_number": "pan", "email": "email"}, consumer_gold, secret=secret,
            audit=audit,
        ).rows
        left = spark.read.format("delta").load(provider_gold)
        right = spark.read.format("delta").load(consumer_gold)

    with _step("match report", progress, seconds, profiler):
        match = alignment.match_report(left, right, on="card_number_token")

    with _step("partner agreements and revocation list", progress, seconds, profiler):
        synth.partner_agreements(spark).write.format("delta").mode("overwrite").save(
            str(out / "agreements")
        )
        opted = tokenize(
            synth.opt_outs(spark, cards=cards, fraction=0.01, seed=seed),
            {"card_number": "pan"},
            secret=secret,
        )
        revocations = str(out / "revocations")
        revocations_from_tokens(
            opted, token_column="card_number_token", reason_code="OPT_OUT", source="demo"
        ).write.format("delta").mode("overwrite").save(revocations)

    # The rules come from the data owners: both parties approved this policy by its
    # fingerprint; from_policy reads the inputs, applies consent and revocations itself and
    # refuses anything the policy does not allow (bounds are the owners').
    policy = demo_policy(out)
    approved = policy.fingerprint
    query = (
        GuardedJoin.from_policy(policy, spark=spark, fingerprint=approved)
        .group_by(*GROUP_BY)
        .agg(
            agg.count().alias("record_count"),
            agg.mean("confirmed_fraud_flag").alias("outcome_rate"),
            agg.mean("txn_count_1h").alias("avg_velocity_1h"),
        )
    )
    with _step(f"guarded join and aggregate (min_cohort {MIN_COHORT})", progress, seconds,
               profiler):
        result = query.min_cohort(MIN_COHORT).run(audit=audit)
        output_table = str(out / "fraud_segments")
        version = result.write_delta(output_table, contract=demo_contract(dp=False), audit=audit)

    with _step("differentially private release charged to the budget ledger", progress, seconds,
               profiler):
        dp_result = (
            query.min_cohort(MIN_COHORT)
            .with_dp(epsilon=1.0, delta=1e-6, max_partitions_contributed=3,
                     max_contributions_per_partition=5, noise="laplace")
            .run(audit=audit, release_id=f"demo-{seed}-weekly-segments")  # the policy's ledger
        )
        dp_table = str(out / "fraud_segments_dp")
        dp_version = dp_result.write_delta(dp_table, contract=demo_contract(dp=True), audit=audit)
        ledger = BudgetLedger(
            str(out / "budget"), collaboration="fraud-consortium", total_epsilon=5.0,
            total_delta=1e-5,
        )
        remaining_eps, _ = ledger.remaining(spark=spark)

    with _step("applying revocations to the provider's gold table", progress, seconds, profiler):
        revoked = apply_revocations(
            provider_gold, revocations, token_column="card_number_token", audit=audit,
            spark=spark,
        )

    with _step("exporting and verifying the audit log", progress, seconds, profiler):
        export = out / "audit.jsonl"
        entries = audit.export(export, spark=spark)
        head = audit.head(spark=spark) or ""
        verdict = verify_file(export, head=head)
        if not verdict.ok:
            raise RuntimeError(f"audit log does not verify: {verdict}")

    with _step("verifying the outputs as the other party (verify_output)", progress, seconds,
               profiler):
        from cleanjoin.verify import verify_output

        for table in (output_table, dp_table):
            outcome = verify_output(table, policy=approved, audit=audit, spark=spark)
            progress(f"    {outcome}")
            if not outcome.ok:
                raise RuntimeError(f"output does not verify: {outcome}")

    report = result.report
    return DemoSummary(
        mode="Spark Connect" if is_connect(spark) else "classic",
        rows_provider=rows_provider,
        rows_consumer=rows_consumer,
        key_check_value=secret.check_value(),
        vectors_verified=check.rows,
        match_rate=match.right_match_rate,
        provider_invalid=profile.invalid_for_preset,
        groups_released=report.groups_released,
        groups_suppressed=report.groups_suppressed or 0,
        rows_excluded_consent=sum((report.rows_excluded_by_consent or {}).values())
        + sum((report.rows_excluded_by_revocation or {}).values()),
        output_table=output_table,
        output_version=version,
        dp_groups_released=dp_result.report.groups_released,
        dp_output_table=dp_table,
        dp_output_version=dp_version,
        epsilon_spent=5.0 - remaining_eps,
        epsilon_remaining=remaining_eps,
        revoked_rows_deleted=revoked.rows_deleted,
        audit_entries=entries,
        audit_head=head,
        audit_export=str(export),
        policy_fingerprint=approved,
        outputs_verified=2,
        seconds=seconds,
    )


def run_demo(
    *,
    rows: int = 300_000,
    seed: int = 7,
    out: str | Path | None = None,
    connect: bool = False,
    progress: Callable[[str], None] = print,
    profile: bool = False,
) -> DemoSummary:
    """Start a local session (classic or Spark Connect) and run :func:`run_flow`.

    With ``profile``, print after the flow a table of each step's wall time and the Spark
    jobs it ran (count and seconds; wall times only on Spark Connect).
    """
    from cleanjoin.session import local_spark

    target = Path(out) if out else Path(tempfile.mkdtemp(prefix="cleanjoin-demo-"))
    seconds: dict[str, float] = {}
    with _step(f"starting local Spark with Delta Lake ({'Connect' if connect else 'classic'})",
               progress, seconds):
        spark = local_spark(connect=connect, app_name="cleanjoin-demo")
    profiler = Profiler(spark) if profile else None
    try:
        summary = run_flow(spark, rows=rows, seed=seed, out=target, progress=progress,
                           profiler=profiler)
    finally:
        spark.stop()
    if profiler is not None:
        progress("\nprofile (after Spark's start):\n" + profiler.table())
    return DemoSummary(**{**summary.__dict__, "seconds": {**seconds, **summary.seconds}})
