"""Size-limited reading of uploaded files (multipart `UploadFile.file`): one function every
upload path shares (price catalogues, check-in photos, consultation images), so that a request
larger than the limit is refused without being held in memory."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import IO

from carepoints.kit.errors import AppError

CHUNK = 64 * 1024
FRAMING = 64 * 1024  # room for the multipart boundaries and headers around the file


def read_limited(stream: IO[bytes], limit: int, too_large: Callable[[], AppError], *, declared: str = "") -> bytes:
    """At most `limit` bytes of an upload, read in chunks; `too_large()` is raised (413) beyond
    the limit (the rest is left unread), or at once when the request's declared Content-Length
    (`declared`) already exceeds the limit plus the multipart framing."""
    if declared.isdigit() and int(declared) > limit + FRAMING:
        raise too_large()
    buf = io.BytesIO()
    while chunk := stream.read(CHUNK):
        buf.write(chunk)
        if buf.tell() > limit:
            raise too_large()
    return buf.getvalue()
