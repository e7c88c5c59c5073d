"""What every command shares: the one policy for user errors, and how help is written.

A user error (bad input, a missing or unreadable file, a full disk) prints
``error: <message>`` on stderr, without a traceback, and exits with status 2, the
status typer uses for bad arguments. Anything else is a bug and keeps its traceback.
The library's messages start with the file or argument at fault; an operating-system
error is shown the same way, as ``<path>: <what the system said>``.

Help is plain text (``rich_markup_mode=None``): Rich would read a bracketed ``[top250]``
in a help text as markup and drop it, and shows a ``<bool>`` type beside every flag as
if it took a value. A default that lives in a settings dataclass is written into the
help with :func:`with_default`, so the number shown is the number used.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, ParamSpec, TypeVar

import typer

__all__ = ["USER_ERROR_EXIT", "fail", "new_app", "one_of", "user_errors", "with_default"]

USER_ERROR_EXIT = 2
P = ParamSpec("P")
R = TypeVar("R")

# ValueError: bad values (the library's errors name the sample, the field and the fix);
# OSError: missing, unreadable, truncated (h5py raises OSError) or unwritable files.
_USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError)


def _message(err: BaseException) -> str:
    """The text of an error: ``path: reason`` for an operating-system error on a path."""
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        where = str(err.filename)
        if err.filename2 is not None:
            where += f" -> {err.filename2}"
        return f"{where}: {err.strerror}"
    return str(err)


def fail(message: object) -> typer.Exit:
    """Print ``error: message`` on stderr; return the exit to raise."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=USER_ERROR_EXIT)


def user_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Wrap a command so that user errors follow the policy above."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except _USER_ERRORS as err:
            raise fail(_message(err)) from err

    return wrapper


def new_app(**settings: Any) -> typer.Typer:
    """A command group rendering its help as plain text (see the module docstring)."""
    return typer.Typer(rich_markup_mode=None, **settings)


def with_default(text: str, default: object) -> str:
    """``"Epochs", 100`` -> ``"Epochs (default: 100)."``; floats in their shortest form."""
    shown = f"{default:g}" if isinstance(default, float) else str(default)
    return f"{text.rstrip('.')} (default: {shown})."


def one_of(names: Iterable[str]) -> str:
    """The choices of an option as help shows them: ``a | b | c``."""
    return " | ".join(names)
