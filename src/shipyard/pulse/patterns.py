"""Body regexes in linear time: google-re2 (https://github.com/google/re2/wiki/Syntax).

Python's `re` backtracks: `(a+)+$` against 30 a's and a '!' runs for minutes, and a body
condition runs on the event loop that runs every check, so one such pattern froze them all.
RE2 matches in time linear in the input, whatever the pattern; the price is that a few Perl
features (backreferences, lookaround) are refused when the monitor file is validated.
"""

from __future__ import annotations

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # the error is raised to the caller; RE2 would also print it to stderr


class PatternError(ValueError):
    pass


class Pattern:
    """A compiled RE2 pattern; equal (and hashed) by its text, so monitors compare by value."""

    __slots__ = ("text", "_re")

    def __init__(self, text: str) -> None:
        self.text = text
        try:
            self._re = re2.compile(text, _OPTIONS)
        except re2.error as exc:
            msg = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
            raise PatternError(f"{msg} (pulse uses RE2 syntax: no backreferences or lookaround)") from None

    def search(self, s: str) -> bool:
        return self._re.search(s) is not None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pattern) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return repr(self.text)
