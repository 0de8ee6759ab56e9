"""Every file fewlabels reads or writes for a user goes through here.

The operating system and the decoder fail in many ways (a missing file or folder, no
permission, a folder where a file should be, a full disk, bytes that are not UTF-8); each
becomes one sentence naming the file, what went wrong and what would be valid:

    config file 'c.yaml' could not be read (it is not UTF-8 text: byte 0xff at position 3); give ...

Writes are atomic: a temporary file beside the target, flushed, then renamed over it, so an
error (or a crash) never leaves a half-written file under a real name and never destroys the
previous version.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from fewlabels.errors import UserError

if TYPE_CHECKING:
    import numpy as np

Action = Literal["read", "written", "created", "used"]  # "used": a stray error whose direction is unknown


def reason(e: OSError | UnicodeDecodeError, action: Action = "read", path: str | Path | None = None) -> str:
    """Plain words for why a file could not be read or written."""
    if isinstance(e, UnicodeDecodeError):
        return f"it is not UTF-8 text: byte 0x{e.object[e.start]:02x} at position {e.start}"
    code = e.errno
    if code == errno.ENOENT:
        if action != "read" and path is not None and not Path(path).parent.is_dir():
            return f"its folder {str(Path(path).parent)!r} does not exist"
        return "it does not exist"
    if code == errno.EISDIR:
        return "it is a folder, not a file"
    if code == errno.ENOTDIR:
        return "a part of its path is a file, not a folder"
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if code == errno.ENOSPC:
        return "the disk is full"
    if code == errno.EDQUOT:
        return "the disk quota is exceeded"
    if code == errno.EROFS:
        return "the file system is read-only"
    if code == errno.EEXIST:
        return "a file of that name is in the way"
    if code == errno.ENAMETOOLONG:
        return "its name is too long"
    return e.strerror or type(e).__name__


def error(path: str | Path, what: str, action: Action, e: OSError | UnicodeDecodeError, valid: str = "") -> UserError:
    """The one-sentence UserError for `e` on `path`."""
    tail = f"; {valid}" if valid else ""
    return UserError(f"{what} {str(path)!r} could not be {action} ({reason(e, action, path)}){tail}")


@contextlib.contextmanager
def user_file(path: str | Path, what: str, action: Action = "read", valid: str = "") -> Iterator[None]:
    """Turn OSError and UnicodeDecodeError raised inside the block into one UserError naming `path`."""
    try:
        yield
    except (OSError, UnicodeDecodeError) as e:
        raise error(path, what, action, e, valid) from e


def read_bytes(path: str | Path, what: str, valid: str = "") -> bytes:
    with user_file(path, what, "read", valid):
        return Path(path).read_bytes()


def read_text(path: str | Path, what: str, valid: str = "") -> str:
    """The file decoded as UTF-8 (a byte-order mark is dropped)."""
    with user_file(path, what, "read", valid):
        return Path(path).read_bytes().decode("utf-8-sig")


def write_bytes_atomic(path: str | Path, data: bytes, what: str, valid: str = "", durable: bool = False) -> Path:
    """Write `data` to a temporary file beside `path` and rename it over `path`.
    `durable`: also fsync the file and its folder (checkpoints: survive a power cut)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with user_file(path, what, "written", valid):
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                if durable:
                    os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        if durable:
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    return path


def write_text_atomic(path: str | Path, text: str, what: str, valid: str = "") -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"), what, valid)


def save_npy_atomic(path: str | Path, array: np.ndarray, what: str, valid: str = "") -> Path:
    """An .npy file written atomically (np.save itself would append .npy to a temporary name)."""
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return write_bytes_atomic(path, buf.getvalue(), what, valid)


def save_npz_atomic(path: str | Path, what: str, **arrays: np.ndarray) -> Path:
    """An .npz file (a run's sample snapshot) written atomically: a crash never leaves half of one."""
    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return write_bytes_atomic(path, buf.getvalue(), what)


def read_npz(path: str | Path) -> dict | None:
    """The arrays of an .npz file, or None when it cannot be read as one (a snapshot cut by a
    crash, bytes garbled on disk): for derived files that a reader may skip, such as report figures."""
    import zipfile

    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, AttributeError):
        return None


def append_text(path: str | Path, text: str, what: str, valid: str = "") -> None:
    """Append to a log file (metrics.jsonl): a cut last line is the worst a crash can leave."""
    with user_file(path, what, "written", valid), open(path, "a", encoding="utf-8") as f:
        f.write(text)


def make_dir(path: str | Path, what: str, valid: str = "") -> Path:
    """`path` and its parents as folders; one sentence if a file is in the way or permission lacks."""
    path = Path(path)
    with user_file(path, what, "created", valid):
        path.mkdir(parents=True, exist_ok=True)
    return path


def check_writable(path: str | Path, what: str, valid: str = "") -> None:
    """Before slow work: refuse at once an output whose folder is missing or that is a folder."""
    path = Path(path)
    parent = path.parent
    if not parent.is_dir():
        raise error(path, what, "written", OSError(errno.ENOENT if not parent.exists() else errno.ENOTDIR, ""), valid)
    if path.is_dir():
        raise error(path, what, "written", IsADirectoryError(errno.EISDIR, ""), valid)


def stray(e: OSError) -> UserError | None:
    """The CLI's last line of defence, for an OSError from code that did not come through here:
    one sentence when it names its file or the disk is full; None (a bug: show it) otherwise."""
    if e.filename is not None:
        return error(e.filename, "file", "used", e)
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return UserError(f"a file could not be written ({reason(e)}); free disk space and run the same command "
                         "again (a run resumes from its last checkpoint)")
    return None
