"""Writing files so that nothing is ever half-written.

Keys, certificates, htpasswd files, the Docker CLI's config and image tarballs are all written the
same way: into a temporary file beside the target, with the final mode set before any byte is
written, then renamed over the target (atomic on POSIX). An interrupted write leaves the old file
intact and, at worst, a hidden ``.NAME.XXXX`` temporary file that nothing reads.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


def write_atomic(path: str | Path, data: bytes | Iterable[bytes], mode: int = 0o644) -> Path:
    """Write ``data`` (bytes, or chunks of bytes) to ``path`` atomically with ``mode``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)  # before the first byte: a private key is never readable by others
        with os.fdopen(fd, "wb") as out:
            for chunk in [data] if isinstance(data, bytes) else data:
                out.write(chunk)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
