"""Build the clean-room notebook from one source, in two formats.

    python notebooks/build_notebook.py

writes ``notebooks/clean_room.ipynb`` (Jupyter) and ``notebooks/clean_room_databricks.py``
(Databricks source format). The test suite checks both are up to date and executes the
Jupyter notebook headless on small data, in both Spark session modes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

CELLS: list[tuple[str, str]] = [
    ("md", """# Fraud signals in a clean room, with cleanjoin

A **card network** (the *provider*, table `transaction_signals`) and a **bank** (the
*consumer*, table `account_behavior`) want to learn which merchant segments carry fraud risk
for which kinds of accounts. Neither may see the other's raw card numbers, and the result
may only contain aggregates that cannot single out a cardholder.

This notebook walks through the whole flow:

1. a shared secret and test vectors both parties verify,
2. each party tokenizes its own card numbers (HMAC-SHA256 after a published normalization),
3. alignment diagnostics (are our tokens going to match?),
4. consent filter and revocations,
5. the guarded join-and-aggregate with a minimum cohort of 100 *cardholders*,
6. a differentially private variant charged to a privacy-budget ledger,
7. the output contract review and the Delta output behind it,
8. the audit log, exported and verified offline,
9. a chart of the released outcome rates.

Sizes are small so it runs anywhere; set `CLEANJOIN_NB_ROWS` for more."""),
    ("code", """import os, tempfile
from pathlib import Path

import cleanjoin
from cleanjoin import agg, alignment, synth, vectors
from cleanjoin import GuardedJoin, BudgetLedger, OutputContract, Secret, tokenize, write_tokens
from cleanjoin.audit import AuditLog

ROWS = int(os.environ.get("CLEANJOIN_NB_ROWS", "200000"))
CONNECT = os.environ.get("CLEANJOIN_NB_CONNECT") == "1"
OUT = Path(os.environ.get("CLEANJOIN_NB_OUT") or tempfile.mkdtemp(prefix="clean-room-"))
OUT.mkdir(parents=True, exist_ok=True)

# In a Databricks clean room `spark` already exists; locally we start one with Delta Lake.
spark = cleanjoin.local_spark(connect=CONNECT, app_name="clean-room-notebook")
print("cleanjoin", cleanjoin.__version__, "| Spark", spark.version, "| Connect:", CONNECT)"""),
    ("md", """## 1. The shared secret

Both parties hold the same 32-byte key, exchanged out of band. Here it comes from the
`CLEANJOIN_SECRET` environment variable (`Secret.from_dbutils(scope, key)` on Databricks).
Nobody ever prints the key: `repr(secret)` shows only its source and length. Instead,
both parties compare the **key check value**, a short HMAC of a published constant."""),
    ("code", """if not os.environ.get("CLEANJOIN_SECRET"):
    # Demo only: a fixed key so the notebook runs anywhere. Never do this with real data.
    import hashlib
    os.environ["CLEANJOIN_SECRET"] = "hex:" + hashlib.sha256(b"cleanjoin notebook demo key").hexdigest()
secret = Secret.from_env("CLEANJOIN_SECRET")
print(secret, "check value:", secret.check_value())"""),
    ("md", """## 2. Test vectors both parties verify

The provider publishes a file of canonical inputs (every card brand and length, whitespace
and zero-width variants, full-width digits, dashes, invalid values...) with their normalized
form and token. The bank recomputes them with *its* Spark and *its* copy of the key.
Any mismatch is reported by row number only: never a value."""),
    ("code", """vector_file = OUT / "pan-vectors.csv"
vectors.write_csv(vector_file, "pan", secret)
check = vectors.verify(vector_file, secret=secret, spark=spark)
print(check)
assert check.ok"""),
    ("md", """## 3. Each party's data, and tokens

`cleanjoin.synth` generates both parties' tables with realistic dirt on the identifiers:
spaces, tabs, non-breaking spaces, dashes, full-width digits, zero-width characters, empty
values. `write_tokens` normalizes exactly as the published spec (`docs/token-spec.md`) says,
replaces `card_number` with `card_number_token` and writes each side's Delta gold table. Every step is written to the audit log."""),
    ("code", """audit = AuditLog(str(OUT / "audit"), actor="notebook")
provider = synth.transaction_signals(spark, rows=ROWS, cards=max(ROWS // 6, 2000), seed=7)
consumer = synth.account_behavior(spark, cards=max(ROWS // 12, 1000), provider_cards=max(ROWS // 6, 2000), seed=7)

print(alignment.profile(provider, "card_number", "pan"))

provider_gold, consumer_gold = str(OUT / "provider_gold"), str(OUT / "consumer_gold")
# one job per side: tokens written to Delta, the audit's counts observed on the same write
print(write_tokens(provider, {"card_number": "pan"}, provider_gold, secret=secret, audit=audit))
print(write_tokens(consumer, {"card_number": "pan", "email": "email"}, consumer_gold,
                   secret=secret, audit=audit))
left = spark.read.format("delta").load(provider_gold)
right = spark.read.format("delta").load(consumer_gold)
left.printSchema()"""),
    ("md", """## 4. Will the tokens match?

The match report counts distinct tokens on each side and their overlap. A rate near zero
almost always means a key or spec mismatch, and the report says so."""),
    ("code", """print(alignment.match_report(left, right, on="card_number_token"))"""),
    ("md", """## 5. Consent and revocations

Only rows whose cardholder consented, in regions with an active partner agreement, may be
shared. Opt-outs arrive as a revocation list of tokens; the guarded query excludes them at
query time (an anti-join), so an opt-out takes effect on the very next run. Both tables are
named in the collaboration policy below, so the notebook cannot leave them out."""),
    ("code", """synth.partner_agreements(spark).write.format("delta").mode("overwrite").save(str(OUT / "agreements"))
from cleanjoin.revocation import revocations_from_tokens
opted = tokenize(synth.opt_outs(spark, cards=max(ROWS // 6, 2000), fraction=0.01, seed=7),
                 {"card_number": "pan"}, secret=secret)
revocations = str(OUT / "revocations")
revocations_from_tokens(opted, token_column="card_number_token", reason_code="OPT_OUT",
                        source="notebook").write.format("delta").mode("overwrite").save(revocations)"""),
    ("md", """## 6. The collaboration policy, and the guarded join and aggregate

The rules are not this notebook's to choose: both organizations approved a **collaboration
policy** (`docs/policy.md`) by its fingerprint — the input tables, the join column, the
allowed dimensions and measures with owner-fixed bounds, consent and revocations, the
minimum cohort, the DP ceilings and the budget ledger. `GuardedJoin.from_policy` refuses a
policy whose fingerprint is not the approved one, reads the inputs itself and refuses with
`PolicyViolation` anything the policy does not allow (`min_cohort(1)`, a wider bound, another
privacy unit, a column not listed...).

The guarded query refuses `min`, `max`, percentiles and raw expressions, never outputs the
token, and removes every segment with fewer than 100 distinct **cardholders** (not rows: a
card with 500 transactions is one person). The report says how many groups were suppressed,
never which."""),
    ("code", """from cleanjoin.demo import demo_policy
policy = demo_policy(OUT)          # in a real clean room: CollaborationPolicy.load("policy.yaml")
APPROVED = policy.fingerprint      # the value both parties signed off, compared out of band
print("policy", policy.name, "version", policy.version, "fingerprint", APPROVED[:16], "...")
query = (
    GuardedJoin.from_policy(policy, spark=spark, fingerprint=APPROVED)
    .group_by("merchant_category_code", "account_age_band", "cross_border_flag")
    .agg(
        agg.count().alias("record_count"),
        agg.mean("confirmed_fraud_flag").alias("outcome_rate"),   # the owner's bounds (0, 1)
        agg.mean("txn_count_1h").alias("avg_velocity_1h"),        # the owner's bounds (0, 50)
    )
)
try:
    query.min_cohort(1)
except cleanjoin.PolicyViolation as refused:
    print("refused:", refused)
result = query.min_cohort(100).run(audit=audit)
print(result.report)
result.df.orderBy("outcome_rate", ascending=False).show(5)"""),
    ("md", """## 7. Output contract and the Delta output

The output contract was approved in advance: which columns, types and roles may leave the
clean room, the minimum cohort, whether DP is required. `write_delta` reviews the result
against it and writes only an approved result, as one Delta commit whose metadata carries
the contract fingerprint and the audit head."""),
    ("code", """from cleanjoin.demo import demo_contract
contract = demo_contract(dp=False)
print(contract.review(result))
version = result.write_delta(str(OUT / "fraud_segments"), contract=contract, audit=audit)
print("written as Delta version", version)"""),
    ("md", """## 8. A differentially private release, charged to the policy's budget ledger

A cohort threshold alone does not stop differencing attacks. With `with_dp`, each
cardholder's contribution is bounded, partitions are selected privately and calibrated
noise from pipeline_dp's mechanisms is added. The ledger refuses any release that would
exceed the collaboration's total ε, and re-running a release id returns the stored output
without spending more. Under a policy the run charges the policy's ledger by itself; ε and
δ above the policy's ceilings, or any other ledger, are refused."""),
    ("code", """dp_result = (
    query.min_cohort(100)
    .with_dp(epsilon=1.0, delta=1e-6, max_partitions_contributed=3,
             max_contributions_per_partition=5, noise="laplace")
    .run(audit=audit, release_id="notebook-weekly-segments")
)
ledger = BudgetLedger(str(OUT / "budget"), collaboration="fraud-consortium",
                      total_epsilon=5.0, total_delta=1e-5)
print(dp_result.report)
dp_version = dp_result.write_delta(str(OUT / "fraud_segments_dp"), contract=demo_contract(dp=True),
                                   audit=audit)
print("epsilon remaining:", ledger.remaining(spark=spark))"""),
    ("md", """## 9. The audit log, verified offline

Every step above appended a hash-chained entry. The export is plain JSON lines that a
partner verifies with the Python standard library only (`docs/audit-format.md`)."""),
    ("code", """from cleanjoin._auditverify import verify_file
export = OUT / "audit.jsonl"
n = audit.export(export, spark=spark)
head = audit.head(spark=spark)
print(n, "entries; verification:", verify_file(export, head=head))"""),
    ("md", """The other party checks each output table with `verify_output` (or the CLI verb
`cleanjoin verify-output TABLE --policy-fingerprint HEX --audit TABLE`): the latest commit
is a cleanjoin write under the approved policy, the rows still have the content hash it
recorded, and the audit log holds that write. Any single-row change to an output fails it."""),
    ("code", """from cleanjoin import verify_output
for table in ("fraud_segments", "fraud_segments_dp"):
    print(verify_output(str(OUT / table), policy=APPROVED, audit=audit, spark=spark))"""),
    ("md", """## 10. Outcome rate by segment

Only released rows are plotted: segments below the cohort threshold never left Spark."""),
    ("code", """import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
pdf = (result.df.groupBy("merchant_category_code")
       .agg({"outcome_rate": "avg"}).withColumnRenamed("avg(outcome_rate)", "rate")
       .orderBy("merchant_category_code").toPandas())
fig, ax = plt.subplots(figsize=(8, 3))
ax.bar(pdf["merchant_category_code"], pdf["rate"])
ax.set_xlabel("merchant category code"); ax.set_ylabel("confirmed fraud rate")
ax.set_title("Outcome rate by merchant category (released segments only)")
fig.savefig(OUT / "outcome_rate.png", dpi=100)
print("chart written to", OUT / "outcome_rate.png")"""),
    ("code", """spark.stop()"""),
]


def notebook_json() -> str:
    """The Jupyter notebook, as JSON text."""
    cells = []
    for kind, source in CELLS:
        lines = source.splitlines(keepends=True)
        if kind == "md":
            cells.append({"cell_type": "markdown", "metadata": {}, "source": lines})
        else:
            cells.append({"cell_type": "code", "execution_count": None, "metadata": {},
                          "outputs": [], "source": lines})
    nb = {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    for i, cell in enumerate(nb["cells"]):
        cell["id"] = f"cell-{i:02d}"
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def databricks_source() -> str:
    """The same notebook in Databricks source format."""
    parts = ["# Databricks notebook source"]
    for kind, source in CELLS:
        if kind == "md":
            body = "\n".join("# MAGIC " + ("%md " if i == 0 else "") + line
                             for i, line in enumerate(source.splitlines()))
        else:
            body = source
        parts.append(body)
    return "\n\n# COMMAND ----------\n\n".join(parts) + "\n"


def main() -> int:
    (HERE / "clean_room.ipynb").write_text(notebook_json(), encoding="utf-8")
    (HERE / "clean_room_databricks.py").write_text(databricks_source(), encoding="utf-8")
    print("wrote notebooks/clean_room.ipynb and notebooks/clean_room_databricks.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
