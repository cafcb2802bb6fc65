from __future__ import annotations

import inspect

import pytest

from cleanjoin import errors


def test_every_error_derives_from_base_and_a_builtin() -> None:
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if c.__module__ == errors.__name__]
    assert len(classes) == len(errors.__all__)
    for cls in classes:
        assert issubclass(cls, errors.CleanJoinError)
        if cls is not errors.CleanJoinError:
            builtin_bases = [b for b in cls.__mro__ if b.__module__ == "builtins" and b not in (object, BaseException, Exception)]
            assert builtin_bases, cls


def test_all_is_sorted_and_exists() -> None:
    assert list(errors.__all__) == sorted(errors.__all__)
    for name in errors.__all__:
        assert hasattr(errors, name)


def test_column_not_found_message_is_not_quoted() -> None:
    err = errors.ColumnNotFoundError("tokenize: column 'pan' not found")
    assert str(err) == "tokenize: column 'pan' not found"
    with pytest.raises(KeyError):
        raise err
