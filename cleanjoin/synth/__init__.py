"""Deterministic synthetic data for the fraud-signal collaboration.

Two parties share card-level fraud signals through a clean room:

* the **provider** (a card network) holds :func:`transaction_signals`, one row per
  transaction with merchant category, velocity and confirmed-fraud outcome;
* the **consumer** (an issuer) holds :func:`account_behavior`, one row per account.

Everything is built with Spark expressions from ``spark.range``: no row passes through
the driver, no Python UDF runs, so 10M rows per party cost what Spark's own expressions
cost. Every random choice is a *seeded uniform* ``xxhash64(seed, salt, id) / 2**53``, so
the same arguments give the same DataFrame, row for row, in classic Spark and in Spark
Connect, whatever the partitioning.

**Card universe.** Card ``i`` (``i = 0, 1, 2, ...``) has one PAN, fixed by ``seed``: a
brand (Visa 16, Mastercard 16, Amex 15, Discover 16, JCB 16, UnionPay 19, Diners 14
digits), an issuer prefix of that brand, middle digits ``(i * C + offset(seed)) mod 10**k``
(a bijection, so distinct cards have distinct PANs) and a valid Luhn check digit. Card-level
attributes (region, consent, latent risk) are functions of ``(seed, i)`` too, so both
parties agree on them. The provider sees cards ``0 .. cards-1``; the consumer's accounts
take exactly ``round(overlap * cards)`` of those (chosen pseudo-randomly) and the rest are
cards ``>= cards`` that the provider never sees.

**Dirt.** Identifier columns get realistic dirt at the rates of a :class:`Dirt`: each
value gets at most one kind, picked by cumulative thresholds on a seeded uniform, so a
kind's rate is exactly a Bernoulli rate and measurable. ``with_truth=True`` adds the
clean value and the dirt kind of each row (ground truth for tests; never share those).

Example:
    >>> luhn_valid("4111111111111111"), luhn_valid("4111111111111112")
    (True, False)
    >>> Dirt().pan_rate <= 0.08 and Dirt.none().pan_rate == 0.0
    True
    >>> from cleanjoin import local_spark  # doctest: +SKIP
    >>> spark = local_spark()  # doctest: +SKIP
    >>> provider = transaction_signals(spark, rows=300_000, cards=50_000, seed=7)  # doctest: +SKIP
    >>> consumer = account_behavior(spark, cards=50_000, overlap=0.6, seed=7)  # doctest: +SKIP
"""

from __future__ import annotations

from cleanjoin.synth._columns import (
    ACCOUNT_AGE_BANDS,
    AMOUNT_BANDS,
    CONSENT_VALUES,
    CONSUMER_COLUMNS,
    CONSUMER_SCHEMA,
    MERCHANT_CATEGORY_CODES,
    PROVIDER_COLUMNS,
    PROVIDER_SCHEMA,
    REGIONS,
)
from cleanjoin.synth._consumer import account_behavior
from cleanjoin.synth._dirt import EMAIL_DIRT_KINDS, PAN_DIRT_KINDS, Dirt
from cleanjoin.synth._feeds import opt_outs, partner_agreements
from cleanjoin.synth._pan import _PAN_BRANCHES as _PAN_BRANCHES  # read by tests/test_synth.py
from cleanjoin.synth._pan import BRAND_LENGTHS, BRANDS, card_numbers, luhn_valid
from cleanjoin.synth._provider import Skew, transaction_signals

__all__ = [
    "ACCOUNT_AGE_BANDS",
    "AMOUNT_BANDS",
    "BRANDS",
    "BRAND_LENGTHS",
    "CONSENT_VALUES",
    "CONSUMER_COLUMNS",
    "CONSUMER_SCHEMA",
    "EMAIL_DIRT_KINDS",
    "MERCHANT_CATEGORY_CODES",
    "PAN_DIRT_KINDS",
    "PROVIDER_COLUMNS",
    "PROVIDER_SCHEMA",
    "REGIONS",
    "Dirt",
    "Skew",
    "account_behavior",
    "card_numbers",
    "luhn_valid",
    "opt_outs",
    "partner_agreements",
    "transaction_signals",
]
