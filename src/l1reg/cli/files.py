"""The output folder and the set of files written into it, swapped in as one.

:func:`check_out_dir` refuses an ``--out`` that cannot be written, or that holds files l1reg did not
write, before any work is done. :func:`write_set` writes the whole set into a new folder beside
``--out`` and then swaps it in:

- no ``--out`` yet: one rename of the new folder to ``--out``;
- an ``--out`` from an earlier run: on Linux, one ``renameat2(RENAME_EXCHANGE)`` swaps the two
  folders atomically, then the old set (now under the temporary name) is removed; elsewhere, two
  renames (``--out`` aside, the new folder in), which the next run completes if a kill falls
  between them.

So a kill at any moment leaves ``--out`` holding one complete set, old or new, never a mix; what a
killed run left beside it (its temporary folders, named after its process id) is removed by the
next run once that process is gone. Every set carries a run id (in ``summary.json`` and
``model.json``), by which a run learns that a concurrent one replaced its output
(:func:`replaced_by_another_run`). :func:`write_file` writes one file the same way (a temporary
name, then one rename). The names of the files of a set are here, so that the report and the
commands spell them once.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

from l1reg.cli.errors import CommandError

__all__ = [
    "COEFFICIENTS_CSV",
    "CV_PNG",
    "MODEL_JSON",
    "OUTPUT_NAMES",
    "PATH_PNG",
    "STABILITY_CSV",
    "STABILITY_PNG",
    "SUMMARY_JSON",
    "check_out_dir",
    "new_run_id",
    "replaced_by_another_run",
    "write_file",
    "write_set",
]

COEFFICIENTS_CSV = "coefficients.csv"
SUMMARY_JSON = "summary.json"
MODEL_JSON = "model.json"
PATH_PNG = "coefficient_path.png"
CV_PNG = "cv_error.png"
STABILITY_CSV = "stability.csv"
STABILITY_PNG = "stability_path.png"
#: Every name a set may hold: a folder holding anything else is not l1reg's to replace.
OUTPUT_NAMES = frozenset(
    {COEFFICIENTS_CSV, SUMMARY_JSON, MODEL_JSON, PATH_PNG, CV_PNG, STABILITY_CSV, STABILITY_PNG}
)
# The temporary names: ".<name>.l1reg-<pid>-<kind>-<random>", kind "new" (a set being written),
# "old" (a set moved aside by the fallback swap) or "file" (one file being written).
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.l1reg-(?P<pid>\d+)-(?P<kind>new|old|file)-")


def new_run_id() -> str:
    return uuid.uuid4().hex


def check_out_dir(out_dir: Path) -> None:
    """Fail before any work when ``out_dir`` cannot be a folder l1reg writes a set into."""
    for folder in [out_dir, *out_dir.parents]:
        if folder.exists():
            if not folder.is_dir():
                raise CommandError(
                    f"cannot write to --out {str(out_dir)!r}: {str(folder)!r} is a file"
                )
            if folder == out_dir:
                _check_replaceable(out_dir)
                continue  # the set replaces the folder: its parent must be writable
            if not os.access(folder, os.W_OK | os.X_OK):
                raise CommandError(f"cannot write to --out {str(out_dir)!r}: permission denied")
            return


def _check_replaceable(out_dir: Path) -> None:
    foreign = sorted(p.name for p in out_dir.iterdir() if p.name not in OUTPUT_NAMES)
    if foreign:
        shown = ", ".join(repr(n) for n in foreign[:3]) + (" ..." if len(foreign) > 3 else "")
        raise CommandError(
            f"--out {str(out_dir)!r} holds files l1reg fit did not write ({shown}); the "
            "output replaces the whole folder: choose an empty or new folder"
        )


def write_set(out_dir: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` into a new folder and swap it in for ``out_dir`` (see the module's text).

    On an error before the swap, ``out_dir`` is as it was and nothing is left beside it.
    """
    out_dir = Path(os.path.realpath(out_dir))  # a link to a folder: the set goes there
    parent = out_dir.parent
    created = [p for p in [parent, *parent.parents] if not p.exists()]
    staging = None
    try:
        parent.mkdir(parents=True, exist_ok=True)
        _remove_leftovers(out_dir)
        staging = Path(tempfile.mkdtemp(dir=parent, prefix=_prefix(out_dir, "new")))
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes it private; give it the usual mode
        for name, data in files.items():
            _write_bytes(staging / name, data)
        _swap_in(staging, out_dir)
    except BaseException as error:
        if staging is not None and staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
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


def write_file(path: Path, data: bytes) -> None:
    """Write one file under a temporary name beside it, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=_prefix(path, "file"))
    try:
        os.close(handle)
        _write_bytes(Path(temp), data)
        os.replace(temp, path)
    except BaseException as error:
        Path(temp).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise CommandError(f"cannot write {str(path)!r}: {error.strerror or error}") from None
        raise


def replaced_by_another_run(out_dir: Path, run: str) -> bool:
    """Whether ``out_dir`` now holds another run's set than the run ``run`` wrote."""
    try:
        return json.loads((out_dir / SUMMARY_JSON).read_text(encoding="utf-8")).get("run") != run
    except (OSError, ValueError):
        return True


def _prefix(path: Path, kind: str) -> str:
    return f".{path.name}.l1reg-{os.getpid()}-{kind}-"


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as file:
        file.write(data)
    os.chmod(path, 0o666 & ~_umask())


def _swap_in(staging: Path, out_dir: Path) -> None:
    """Put ``staging`` at ``out_dir``; the folder that was there (if any) is removed."""
    try:
        os.rename(staging, out_dir)  # no out_dir yet (or an empty one, on Linux): one rename
        return
    except OSError as error:
        if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
            raise
    if _exchange(staging, out_dir):
        shutil.rmtree(staging)  # now the old set
        return
    aside = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=_prefix(out_dir, "old")))
    aside.rmdir()
    os.rename(out_dir, aside)
    os.rename(staging, out_dir)
    shutil.rmtree(aside)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux's renameat2); False where the system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    result = renameat2(
        _AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), ctypes.c_uint(_RENAME_EXCHANGE)
    )
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL):  # an old kernel, or a file system without it
        return False
    raise OSError(code, os.strerror(code), str(b))


def _remove_leftovers(out_dir: Path) -> None:
    """Remove what killed runs left beside ``out_dir``; restore a set they had moved aside."""
    for entry in out_dir.parent.iterdir():
        match = _TEMPORARY.match(entry.name)
        if match is None or match["name"] != out_dir.name or _alive(int(match["pid"])):
            continue
        if match["kind"] == "old" and not out_dir.exists():
            os.rename(entry, out_dir)  # killed between the two renames of the fallback swap
        elif entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process is not writing that set: it is starting one
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
