"""Which column names hold tokens: one rule for the guard, the contract and tokenize.

:func:`cleanjoin.tokenize` names each token column ``<input>`` + :data:`TOKEN_SUFFIX`; a
column called ``token`` (a revocation list's) is a token column too. Names are compared
without case, as Spark resolves them.
"""

from __future__ import annotations

__all__ = ["TOKEN_SUFFIX", "is_token_name"]

TOKEN_SUFFIX = "_token"
"""The suffix :func:`cleanjoin.tokenize` gives every token column."""


def is_token_name(name: str) -> bool:
    """True when a column called ``name`` holds tokens by cleanjoin's naming rule.

    Example:
        >>> is_token_name("card_number_token"), is_token_name("Token"), is_token_name("tokens")
        (True, True, False)
    """
    lowered = name.lower()
    return lowered == TOKEN_SUFFIX[1:] or lowered.endswith(TOKEN_SUFFIX)
