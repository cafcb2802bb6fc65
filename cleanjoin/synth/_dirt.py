"""Identifier dirt: the kinds, their rates (:class:`Dirt`) and the expressions that apply them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from types import ModuleType
from typing import cast

from cleanjoin._typing import Column, DataFrame
from cleanjoin.errors import InvalidArgumentError
from cleanjoin.synth._checks import check_rate
from cleanjoin.synth._pan import with_pan
from cleanjoin.synth._seeded import thresholds, uniform

PAN_DIRT_KINDS = (
    "spaces",
    "tabs",
    "nbsp",
    "separators",
    "fullwidth",
    "zero_width",
    "leading_zeros",
    "empty",
    "null",
)
"""Dirt kinds applied to ``card_number``, in threshold order."""

EMAIL_DIRT_KINDS = ("spaces", "tabs", "nbsp", "zero_width", "email_case", "empty", "null")
"""Dirt kinds applied to ``email``, in threshold order."""

_ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\ufeff")
_FULLWIDTH = "".join(chr(0xFF10 + d) for d in range(10))


@dataclass(frozen=True)
class Dirt:
    """Rates of identifier dirt, per kind (each value gets at most one kind).

    A value's kind is chosen by cumulative thresholds on one seeded uniform, in the order
    of :data:`PAN_DIRT_KINDS` (for ``card_number``) or :data:`EMAIL_DIRT_KINDS` (for
    ``email``), so each kind appears with exactly its rate in expectation (binomial
    spread). Kinds that do not apply to a column are skipped for it. The defaults make
    about 5 % of card numbers and 6 % of emails dirty.

    Attributes:
        spaces: leading and/or trailing ASCII spaces (``" 4111..."``, ``"4111...  "``).
        tabs: a leading or trailing tab.
        nbsp: a leading or trailing non-breaking space (U+00A0), which ``trim`` keeps.
        separators: PAN only: a space or dash after every group of 4 digits
            (``"4111 1111 1111 1111"``, ``"4111-1111-1111-1111"``).
        fullwidth: PAN only: every digit as its full-width form (U+FF10..U+FF19), as typed
            with an East Asian input method.
        zero_width: one zero-width character (U+200B, U+200C, U+200D or U+FEFF) inserted at
            a random position.
        leading_zeros: PAN only: left-padded with zeros to 19 digits, as a fixed-width
            export of a PAN that went through a numeric type does (19-digit PANs get one
            ``0``). The Luhn check still passes (zeros add nothing to its sum): only the
            length tells. A normalizer may strip them because no issued PAN starts with 0.
        email_case: email only: all upper case, or mixed (``"Maria.Garcia12@Example.com"``).
        empty: the empty string.
        null: a null.

    Example:
        >>> d = Dirt(spaces=0.1, null=0.0)
        >>> round(d.pan_rate, 3), d.rate("email_case")
        (0.135, 0.04)
        >>> Dirt.none().email_rate
        0.0
        >>> Dirt(spaces=1.5)
        Traceback (most recent call last):
        ...
        cleanjoin.errors.InvalidArgumentError: 'spaces' in Dirt must be between 0 and 1, got 1.5
    """

    spaces: float = 0.012
    tabs: float = 0.004
    nbsp: float = 0.004
    separators: float = 0.012
    fullwidth: float = 0.004
    zero_width: float = 0.004
    leading_zeros: float = 0.004
    email_case: float = 0.04
    empty: float = 0.003
    null: float = 0.003

    def __post_init__(self) -> None:
        for f in fields(self):
            check_rate("Dirt", f.name, getattr(self, f.name))
        for label, total in (("card_number", self.pan_rate), ("email", self.email_rate)):
            if total > 1.0 + 1e-12:
                raise InvalidArgumentError(
                    f"Dirt rates for {label} add up to {total:.4f}; they must add up to at most 1"
                )

    @classmethod
    def none(cls) -> Dirt:
        """Clean data: every rate zero."""
        return cls(**{f.name: 0.0 for f in fields(cls)})

    @classmethod
    def uniform(cls, rate: float) -> Dirt:
        """Every kind at the same ``rate`` (handy for tests that measure rates)."""
        check_rate("Dirt.uniform", "rate", rate)
        return cls(**{f.name: float(rate) for f in fields(cls)})

    def rate(self, kind: str) -> float:
        """The rate of one dirt kind, by name."""
        if kind not in {f.name for f in fields(self)}:
            options = ", ".join(f'"{f.name}"' for f in fields(self))
            raise InvalidArgumentError(
                f'Unknown dirt kind "{kind}". Available options are {options}.'
            )
        return float(getattr(self, kind))

    @property
    def pan_rate(self) -> float:
        """Share of ``card_number`` values that get some dirt."""
        return sum(self.rate(k) for k in PAN_DIRT_KINDS)

    @property
    def email_rate(self) -> float:
        """Share of ``email`` values that get some dirt."""
        return sum(self.rate(k) for k in EMAIL_DIRT_KINDS)


def dirty(
    F: ModuleType,
    clean: Column,
    kind: Column,
    u: Column,
    u2: Column,
    *,
    mixed_case: Column | None = None,
) -> Column:
    """Apply the dirt ``kind`` (a string column) to ``clean``; ``u``/``u2`` pick variants."""
    one_third, two_thirds = 1.0 / 3.0, 2.0 / 3.0
    spaces = (
        F.when(u < one_third, F.concat(F.lit(" "), clean))
        .when(u < two_thirds, F.concat(clean, F.lit("  ")))
        .otherwise(F.concat(F.lit("  "), clean, F.lit(" ")))
    )
    tabs = F.when(u < 0.5, F.concat(F.lit("\t"), clean)).otherwise(F.concat(clean, F.lit("\t")))
    nbsp = F.when(u < 0.5, F.concat(F.lit("\u00a0"), clean)).otherwise(
        F.concat(clean, F.lit("\u00a0"))
    )
    separators = F.when(u < 0.5, F.regexp_replace(clean, r"(\d{4})(?=\d)", "$1 ")).otherwise(
        F.regexp_replace(clean, r"(\d{4})(?=\d)", "$1-")
    )
    zw_char = F.element_at(
        F.array(*[F.lit(c) for c in _ZERO_WIDTH]),
        (F.floor(u2 * F.lit(len(_ZERO_WIDTH))) + 1).cast("int"),
    )
    cut = F.floor(u * (F.length(clean) + 1)).cast("int")
    zero_width = F.concat(
        F.substring(clean, F.lit(1), cut),
        zw_char,
        F.substring(clean, cut + 1, F.length(clean)),
    )
    leading_zeros = F.when(F.length(clean) < 19, F.lpad(clean, 19, "0")).otherwise(
        F.concat(F.lit("0"), clean)
    )
    case = F.upper(clean)
    if mixed_case is not None:
        case = F.when(u < 0.5, F.upper(clean)).otherwise(mixed_case)
    return (
        cast("Column", F.when(kind == "spaces", spaces)
        .when(kind == "tabs", tabs)
        .when(kind == "nbsp", nbsp)
        .when(kind == "separators", separators)
        .when(kind == "fullwidth", F.translate(clean, "0123456789", _FULLWIDTH))
        .when(kind == "zero_width", zero_width)
        .when(kind == "leading_zeros", leading_zeros)
        .when(kind == "email_case", case)
        .when(kind == "empty", F.lit(""))
        .when(kind == "null", F.lit(None).cast("string"))
        .otherwise(clean))
    )


def dirt_kind(F: ModuleType, dirt: Dirt, kinds: Sequence[str], u: Column) -> Column:
    """The dirt kind of each value: ``kinds`` by cumulative rate on ``u``, else ``"clean"``."""
    rates = [(k, dirt.rate(k)) for k in kinds if dirt.rate(k) > 0]
    return thresholds(F, u, rates, "clean")


def with_dirty_pan(
    df: DataFrame, F: ModuleType, *, card: str, key: str, seed: int, dirt: Dirt
) -> DataFrame:
    """``df`` plus the card number of universe card ``card``: ``_clean_card_number``, its dirt
    kind ``_card_number_dirt`` and the dirty value ``_dirty_card_number``.

    ``df`` holds the staged uniforms ``_u_pan_dirt`` (picks the kind) and ``_u_pan_v`` (picks
    the variant); the zero-width character is picked by a uniform of column ``key``, the
    key those uniforms were drawn for (the row for the provider, the card for the consumer).
    """
    df = with_pan(df, F, card, seed, "_clean_card_number")
    kind = dirt_kind(F, dirt, PAN_DIRT_KINDS, F.col("_u_pan_dirt"))
    df = df.select("*", kind.alias("_card_number_dirt"))
    card_number = dirty(
        F,
        F.col("_clean_card_number"),
        F.col("_card_number_dirt"),
        F.col("_u_pan_v"),
        uniform(F, seed, "pan-dirt-char", F.col(key)),
    )
    return df.select("*", card_number.alias("_dirty_card_number"))
