# Databricks notebook source

# COMMAND ----------

# MAGIC %md # Fraud signals in a clean room, with cleanjoin
# MAGIC 
# MAGIC A **card network** (the *provider*, table `transaction_signals`) and a **bank** (the
# MAGIC *consumer*, table `account_behavior`) want to learn which merchant segments carry fraud risk
# MAGIC for which kinds of accounts. Neither may see the other's raw card numbers, and the result
# MAGIC may only contain aggregates that cannot single out a cardholder.
# MAGIC 
# MAGIC This notebook walks through the whole flow:
# MAGIC 
# MAGIC 1. a shared secret and test vectors both parties verify,
# MAGIC 2. each party tokenizes its own card numbers (HMAC-SHA256 after a published normalization),
# MAGIC 3. alignment diagnostics (are our tokens going to match?),
# MAGIC 4. consent filter and revocations,
# MAGIC 5. the guarded join-and-aggregate with a minimum cohort of 100 *cardholders*,
# MAGIC 6. a differentially private variant charged to a privacy-budget ledger,
# MAGIC 7. the output contract review and the Delta output behind it,
# MAGIC 8. the audit log, exported and verified offline,
# MAGIC 9. a chart of the released outcome rates.
# MAGIC 
# MAGIC Sizes are small so it runs anywhere; set `CLEANJOIN_NB_ROWS` for more.

# COMMAND ----------

import os, tempfile
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
print("cleanjoin", cleanjoin.__version__, "| Spark", spark.version, "| Connect:", CONNECT)

# COMMAND ----------

# MAGIC %md ## 1. The shared secret
# MAGIC 
# MAGIC Both parties hold the same 32-byte key, exchanged out of band. Here it comes from the
# MAGIC `CLEANJOIN_SECRET` environment variable (`Secret.from_dbutils(scope, key)` on Databricks).
# MAGIC Nobody ever prints the key: `repr(secret)` shows only its source and length. Instead,
# MAGIC both parties compare the **key check value**, a short HMAC of a published constant.

# COMMAND ----------

if not os.environ.get("CLEANJOIN_SECRET"):
    # Demo only: a fixed key so the notebook runs anywhere. Never do this with real data.
    import hashlib
    os.environ["CLEANJOIN_SECRET"] = "hex:" + hashlib.sha256(b"cleanjoin notebook demo key").hexdigest()
secret = Secret.from_env("CLEANJOIN_SECRET")
print(secret, "check value:", secret.check_value())

# COMMAND ----------

# MAGIC %md ## 2. Test vectors both parties verify
# MAGIC 
# MAGIC The provider publishes a file of canonical inputs (every card brand and length, whitespace
# MAGIC and zero-width variants, full-width digits, dashes, invalid values...) with their normalized
# MAGIC form and token. The bank recomputes them with *its* Spark and *its* copy of the key.
# MAGIC Any mismatch is reported by row number only: never a value.

# COMMAND ----------

vector_file = OUT / "pan-vectors.csv"
vectors.write_csv(vector_file, "pan", secret)
check = vectors.verify(vector_file, secret=secret, spark=spark)
print(check)
assert check.ok

# COMMAND ----------

# MAGIC %md ## 3. Each party's data, and tokens
# MAGIC 
# MAGIC `cleanjoin.synth` generates both parties' tables with realistic dirt on the identifiers:
# MAGIC spaces, tabs, non-breaking spaces, dashes, full-width digits, zero-width characters, empty
# MAGIC values. `write_tokens` normalizes exactly as the published spec (`docs/token-spec.md`) says,
# MAGIC replaces `card_number` with `card_number_token` and writes each side's Delta gold table. Every step is written to the audit log.

# COMMAND ----------

audit = AuditLog(str(OUT / "audit"), actor="notebook")
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
left.printSchema()

# COMMAND ----------

# MAGIC %md ## 4. Will the tokens match?
# MAGIC 
# MAGIC The match report counts distinct tokens on each side and their overlap. A rate near zero
# MAGIC almost always means a key or spec mismatch, and the report says so.

# COMMAND ----------

print(alignment.match_report(left, right, on="card_number_token"))

# COMMAND ----------

# MAGIC %md ## 5. Consent and revocations
# MAGIC 
# MAGIC Only rows whose cardholder consented, in regions with an active partner agreement, may be
# MAGIC shared. Opt-outs arrive as a revocation list of tokens; the guarded query excludes them at
# MAGIC query time (an anti-join), so an opt-out takes effect on the very next run. Both tables are
# MAGIC named in the collaboration policy below, so the notebook cannot leave them out.

# COMMAND ----------

synth.partner_agreements(spark).write.format("delta").mode("overwrite").save(str(OUT / "agreements"))
from cleanjoin.revocation import revocations_from_tokens
opted = tokenize(synth.opt_outs(spark, cards=max(ROWS // 6, 2000), fraction=0.01, seed=7),
                 {"card_number": "pan"}, secret=secret)
revocations = str(OUT / "revocations")
revocations_from_tokens(opted, token_column="card_number_token", reason_code="OPT_OUT",
                        source="notebook").write.format("delta").mode("overwrite").save(revocations)

# COMMAND ----------

# MAGIC %md ## 6. The collaboration policy, and the guarded join and aggregate
# MAGIC 
# MAGIC The rules are not this notebook's to choose: both organizations approved a **collaboration
# MAGIC policy** (`docs/policy.md`) by its fingerprint — the input tables, the join column, the
# MAGIC allowed dimensions and measures with owner-fixed bounds, consent and revocations, the
# MAGIC minimum cohort, the DP ceilings and the budget ledger. `GuardedJoin.from_policy` refuses a
# MAGIC policy whose fingerprint is not the approved one, reads the inputs itself and refuses with
# MAGIC `PolicyViolation` anything the policy does not allow (`min_cohort(1)`, a wider bound, another
# MAGIC privacy unit, a column not listed...).
# MAGIC 
# MAGIC The guarded query refuses `min`, `max`, percentiles and raw expressions, never outputs the
# MAGIC token, and removes every segment with fewer than 100 distinct **cardholders** (not rows: a
# MAGIC card with 500 transactions is one person). The report says how many groups were suppressed,
# MAGIC never which.

# COMMAND ----------

from cleanjoin.demo import demo_policy
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
result.df.orderBy("outcome_rate", ascending=False).show(5)

# COMMAND ----------

# MAGIC %md ## 7. Output contract and the Delta output
# MAGIC 
# MAGIC The output contract was approved in advance: which columns, types and roles may leave the
# MAGIC clean room, the minimum cohort, whether DP is required. `write_delta` reviews the result
# MAGIC against it and writes only an approved result, as one Delta commit whose metadata carries
# MAGIC the contract fingerprint and the audit head.

# COMMAND ----------

from cleanjoin.demo import demo_contract
contract = demo_contract(dp=False)
print(contract.review(result))
version = result.write_delta(str(OUT / "fraud_segments"), contract=contract, audit=audit)
print("written as Delta version", version)

# COMMAND ----------

# MAGIC %md ## 8. A differentially private release, charged to the policy's budget ledger
# MAGIC 
# MAGIC A cohort threshold alone does not stop differencing attacks. With `with_dp`, each
# MAGIC cardholder's contribution is bounded, partitions are selected privately and calibrated
# MAGIC noise from pipeline_dp's mechanisms is added. The ledger refuses any release that would
# MAGIC exceed the collaboration's total ε, and re-running a release id returns the stored output
# MAGIC without spending more. Under a policy the run charges the policy's ledger by itself; ε and
# MAGIC δ above the policy's ceilings, or any other ledger, are refused.

# COMMAND ----------

dp_result = (
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
print("epsilon remaining:", ledger.remaining(spark=spark))

# COMMAND ----------

# MAGIC %md ## 9. The audit log, verified offline
# MAGIC 
# MAGIC Every step above appended a hash-chained entry. The export is plain JSON lines that a
# MAGIC partner verifies with the Python standard library only (`docs/audit-format.md`).

# COMMAND ----------

from cleanjoin._auditverify import verify_file
export = OUT / "audit.jsonl"
n = audit.export(export, spark=spark)
head = audit.head(spark=spark)
print(n, "entries; verification:", verify_file(export, head=head))

# COMMAND ----------

# MAGIC %md The other party checks each output table with `verify_output` (or the CLI verb
# MAGIC `cleanjoin verify-output TABLE --policy-fingerprint HEX --audit TABLE`): the latest commit
# MAGIC is a cleanjoin write under the approved policy, the rows still have the content hash it
# MAGIC recorded, and the audit log holds that write. Any single-row change to an output fails it.

# COMMAND ----------

from cleanjoin import verify_output
for table in ("fraud_segments", "fraud_segments_dp"):
    print(verify_output(str(OUT / table), policy=APPROVED, audit=audit, spark=spark))

# COMMAND ----------

# MAGIC %md ## 10. Outcome rate by segment
# MAGIC 
# MAGIC Only released rows are plotted: segments below the cohort threshold never left Spark.

# COMMAND ----------

import matplotlib
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
print("chart written to", OUT / "outcome_rate.png")

# COMMAND ----------

spark.stop()
