"""The output folder and the set of files written into it.

:func:`check_out_dir` refuses an ``--out`` that cannot be written before any work is done.
:func:`write_files` writes a set of files under temporary names in the folder and renames them
into place only once every one is complete: an error or a Ctrl-C before the renames leaves what
the folder held before (and removes the folders the call created). The renames are one per file,
so a process killed between two of them can still leave a new file beside old ones. The names of
the files that ``l1reg fit`` writes are here, so that the report and the commands spell them once.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from l1reg.cli.errors import CommandError

__all__ = ["COEFFICIENTS_CSV", "CV_PNG", "PATH_PNG", "SUMMARY_JSON", "check_out_dir", "write_files"]

COEFFICIENTS_CSV = "coefficients.csv"
SUMMARY_JSON = "summary.json"
PATH_PNG = "coefficient_path.png"
CV_PNG = "cv_error.png"


def check_out_dir(out_dir: Path) -> None:
    """Fail before any work when ``out_dir`` cannot be a folder we write into."""
    for folder in [out_dir, *out_dir.parents]:
        if folder.exists():
            if not folder.is_dir():
                raise CommandError(
                    f"cannot write to --out {str(out_dir)!r}: {str(folder)!r} is a file"
                )
            if not os.access(folder, os.W_OK | os.X_OK):
                raise CommandError(f"cannot write to --out {str(out_dir)!r}: permission denied")
            return


def write_files(out_dir: Path, files: dict[str, bytes], *, stale: tuple[str, ...] = ()) -> None:
    """Write every file under a temporary name, then rename them all into place.

    On an exception the temporary files (and the folders this call created) are removed, so an
    error before the renames leaves ``out_dir`` as it was. The files named in ``stale`` (outputs of
    an earlier run that this run does not make) are removed once the new set is in place.
    """
    created = [p for p in [out_dir, *out_dir.parents] if not p.exists()]
    temporary: dict[str, str] = {}
    umask = os.umask(0)
    os.umask(umask)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            handle, temp = tempfile.mkstemp(dir=out_dir, prefix=f".{name}.", suffix=".tmp")
            temporary[name] = temp
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            os.chmod(temp, 0o666 & ~umask)  # mkstemp makes it private; give it the usual mode
        for name, temp in temporary.items():
            os.replace(temp, out_dir / name)
    except BaseException as error:
        for temp in temporary.values():
            Path(temp).unlink(missing_ok=True)
        for folder in created:  # deepest first
            try:
                folder.rmdir()
            except OSError:
                pass
        if isinstance(error, OSError):
            raise CommandError(
                f"cannot write to --out {str(out_dir)!r}: {error.strerror or error}"
            ) from None
        raise
    for name in stale:
        if name not in files:
            (out_dir / name).unlink(missing_ok=True)
