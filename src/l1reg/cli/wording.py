"""How the command words things, in its error messages and its report alike.

Counts with their noun (``plural``), a shortened list of names (``name_list``) and numbers in five
significant digits (``number``): one definition each, so that an error and the report never spell
the same thing two ways.
"""

from __future__ import annotations

__all__ = ["name_list", "number", "plural"]


def plural(n: int, word: str) -> str:
    """``"1 row"``, ``"2 rows"``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def name_list(names: list[str], limit: int = 12) -> str:
    """The first ``limit`` names quoted, then how many more: a message stays one readable line."""
    shown = ", ".join(repr(str(n)) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def number(value: float, digits: int = 5) -> str:
    """``value`` in ``digits`` significant digits; a negative zero prints as ``0``."""
    text = f"{value:.{digits}g}"
    return "0" if text in ("-0", "0") else text
