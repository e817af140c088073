"""The project's own exceptions.

Every tool raises these (or subclasses) so that the CLI, the Lambda handlers and the HTTP
endpoints can map them the same way: a ShipyardError is an expected failure with a message
that says what went wrong and a hint that says how to fix it; anything else is a bug.

`retryable` follows dlt's terminal/transient split: a terminal error (bad input) must never be
retried, a retryable one (connection lost, throttling) should be.
"""

from __future__ import annotations

import difflib
from typing import Any, Iterable


class ShipyardError(Exception):
    """An expected failure, with what went wrong and how to fix it."""

    retryable: bool = False
    exit_code: int = 2

    def __init__(self, message: str, *, hint: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": type(self).__name__, "message": self.message}
        if self.hint:
            out["hint"] = self.hint
        out.update({k: v for k, v in self.details.items() if v is not None})
        return out

    def __str__(self) -> str:
        return f"{self.message} (hint: {self.hint})" if self.hint else self.message


def closest(name: str, choices: "Iterable[str]", *, cutoff: float = 0.6) -> str | None:
    """The closest of `choices` to a misspelt `name`, else None (one rule for every suggestion)."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=cutoff)
    return close[0] if close else None


def did_you_mean(name: str, choices: "Iterable[str]", *, cutoff: float = 0.6) -> str | None:
    """"did you mean 'x'?" for the closest of `choices` to a misspelt `name`, else None."""
    close = closest(name, choices, cutoff=cutoff)
    return f"did you mean {close!r}?" if close else None


class ConfigError(ShipyardError):
    """Settings, a config file or a command line that cannot work."""


class InputError(ShipyardError):
    """A file or payload a user supplied is wrong; terminal, never retried."""


class NotFoundError(ShipyardError):
    """A named thing (object, table, channel, dataset, monitor) does not exist."""


class TransientError(ShipyardError):
    """A dependency failed in a way that may pass (connection, throttling, 5xx): retry."""

    retryable = True
    exit_code = 3
