"""Exceptions that keep their type and message across a process boundary.

A training runs in a child process and its exception comes back to the worker by pickle. The
default pickling of an exception rebuilds it as ``cls(*self.args)``, which fails for a constructor
that builds its own message from other (or keyword-only) arguments: the worker then saw a
``TypeError`` about ``__init__`` instead of, say, ``InsufficientDataError``. Every named error of
this package therefore derives from :class:`PortableError`, which pickles its state instead of its
constructor call.
"""

from __future__ import annotations

from typing import Any


def _rebuild_error(
    cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]
) -> BaseException:
    """Make the exception without calling its ``__init__``: the message is already in ``args``."""
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


class PortableError(Exception):
    """Base (or mixin, before a builtin error class) of an exception that pickles by state.

    ``args`` (the message) and the instance attributes (``needed``, ``symbol``, notes added with
    ``add_note``) travel; the constructor is not called on the other side, so its signature is free.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_error, (type(self), self.args, dict(self.__dict__)))
