"""The one error the command reports to its user: a problem with their input or their files.

DESIGN.md's rule for the command line: an error is one line on stderr, without a traceback, and
exit status 2. Every room of the command raises :class:`CommandError` with that line's text (naming
the file, column, option or value at fault); :func:`l1reg.cli.commands.main` prints it.
"""

from __future__ import annotations

__all__ = ["PROG", "CommandError"]

PROG = "l1reg"


class CommandError(ValueError):
    """A problem with the user's input: one line, exit status 2 (in Python, a ValueError)."""
