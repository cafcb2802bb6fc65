"""The two parties' columns: schemas and the values (with their shares) each column takes."""

from __future__ import annotations

PROVIDER_SCHEMA = (
    "card_number string, merchant_category_code string, txn_count_1h int, "
    "txn_amount_band string, cross_border_flag int, network_velocity_score double, "
    "confirmed_fraud_flag int, sharing_consent_flag string, data_residency_region string"
)
"""DDL of :func:`transaction_signals` (column order and types)."""

CONSUMER_SCHEMA = (
    "card_number string, account_age_band string, chargeback_rate_90d double, "
    "prior_fraud_flag int, email string"
)
"""DDL of :func:`account_behavior` (column order and types)."""

PROVIDER_COLUMNS = tuple(part.split()[0] for part in PROVIDER_SCHEMA.split(", "))
CONSUMER_COLUMNS = tuple(part.split()[0] for part in CONSUMER_SCHEMA.split(", "))

# (code, share of transactions, typical amount in USD, fraud risk weight, cross-border boost)
MCC_TABLE: tuple[tuple[str, float, float, float, float], ...] = (
    ("5411", 0.18, 45.0, 0.0, 0.0),  # grocery stores
    ("5812", 0.13, 40.0, 0.1, 0.01),  # restaurants
    ("5541", 0.09, 50.0, 0.2, 0.0),  # service stations
    ("6011", 0.08, 120.0, 0.8, 0.03),  # ATM cash
    ("5999", 0.08, 60.0, 0.7, 0.02),  # miscellaneous retail
    ("5311", 0.07, 80.0, 0.2, 0.0),  # department stores
    ("5912", 0.06, 25.0, 0.0, 0.0),  # drug stores
    ("5732", 0.06, 400.0, 1.1, 0.02),  # electronics
    ("4111", 0.05, 8.0, 0.0, 0.01),  # commuter transport
    ("5814", 0.05, 12.0, 0.0, 0.0),  # fast food
    ("4121", 0.04, 25.0, 0.3, 0.04),  # taxis and rideshare
    ("4829", 0.04, 300.0, 1.6, 0.10),  # money transfer
    ("7995", 0.03, 150.0, 1.4, 0.08),  # gambling
    ("7011", 0.02, 350.0, 0.4, 0.30),  # hotels
    ("4511", 0.02, 500.0, 0.6, 0.35),  # airlines
)
MERCHANT_CATEGORY_CODES = tuple(code for code, *_ in MCC_TABLE)
"""The 15 merchant category codes :func:`transaction_signals` draws from (skewed shares)."""

AMOUNT_BANDS = ("0-50", "50-200", "200-1000", "1000+")
"""Values of ``txn_amount_band``, low to high."""

# (region, share of cards, cross-border base rate, share of cards not consortium-eligible)
REGION_TABLE: tuple[tuple[str, float, float, float], ...] = (
    ("US", 0.40, 0.03, 0.06),
    ("EU", 0.25, 0.12, 0.14),
    ("UK", 0.10, 0.08, 0.10),
    ("APAC", 0.15, 0.06, 0.08),
    ("LATAM", 0.07, 0.05, 0.08),
    ("MEA", 0.03, 0.07, 0.10),
)
REGIONS = tuple(region for region, *_ in REGION_TABLE)
"""Values of ``data_residency_region``."""

CONSENT_VALUES = ("CONSORTIUM_ELIGIBLE", "OPTED_OUT", "RESTRICTED")
"""Values of ``sharing_consent_flag``; only ``CONSORTIUM_ELIGIBLE`` may be shared."""

ACCOUNT_AGE_BANDS = ("<1y", "1-3y", "3-5y", "5y+")
"""Values of ``account_age_band``, young to old."""
AGE_SHARES = (0.15, 0.30, 0.25, 0.30)
FIRST_NAMES = (
    "maria", "james", "wei", "fatima", "olivia", "liam", "aarav", "sofia", "noah", "yuki",
    "amara", "lucas", "chloe", "mateo", "priya", "ethan", "zara", "hugo", "mei", "omar",
)  # fmt: skip
LAST_NAMES = (
    "garcia", "smith", "chen", "khan", "mueller", "rossi", "kim", "silva", "nguyen", "patel",
    "cohen", "dubois", "novak", "tanaka", "okafor", "larsen", "haddad", "lopez", "murphy", "ivanova",
)  # fmt: skip
EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com")
