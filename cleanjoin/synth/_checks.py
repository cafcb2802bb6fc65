"""Argument checks shared by the synth generators and their option objects."""

from __future__ import annotations

import math

from cleanjoin.errors import InvalidArgumentError


def check_rate(owner: str, name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise InvalidArgumentError(
            f"'{name}' in {owner} must be a number, got {type(value).__name__}"
        )
    if not 0.0 <= value <= 1.0:
        raise InvalidArgumentError(f"'{name}' in {owner} must be between 0 and 1, got {value}")


def check_count(owner: str, name: str, value: int, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(
            f"'{name}' in {owner} must be an int, got {type(value).__name__}"
        )
    if value < minimum:
        raise InvalidArgumentError(f"'{name}' in {owner} must be >= {minimum}, got {value}")


def check_seed(owner: str, seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InvalidArgumentError(f"'seed' in {owner} must be an int, got {type(seed).__name__}")
