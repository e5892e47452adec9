"""kit.uploads.read_limited, the one size-limited upload reader (consultation images, photo check-ins,
price lists), without a database."""

from __future__ import annotations

import io

import pytest

from carepoints.kit import uploads
from carepoints.kit.errors import AppError


class TooBigError(AppError):
    code = "test.too_big"
    status_code = 413


class Counting(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.reads = 0

    def read(self, size: int | None = -1) -> bytes:
        self.reads += 1
        return super().read(size)


def test_reads_up_to_the_limit_in_chunks() -> None:
    data = b"x" * (uploads.CHUNK * 2 + 5)
    stream = Counting(data)
    assert uploads.read_limited(stream, len(data), TooBigError) == data
    assert stream.reads == 4  # three chunks and the empty read that ends it


def test_refuses_past_the_limit_without_reading_the_rest() -> None:
    stream = Counting(b"x" * (uploads.CHUNK * 10))
    with pytest.raises(TooBigError):
        uploads.read_limited(stream, uploads.CHUNK + 1, TooBigError)
    assert stream.reads == 2


def test_a_declared_length_too_large_is_refused_before_reading() -> None:
    stream = Counting(b"small")
    with pytest.raises(TooBigError):
        uploads.read_limited(stream, 1000, TooBigError, declared=str(1000 + uploads.FRAMING + 1))
    assert stream.reads == 0
    assert uploads.read_limited(Counting(b"small"), 1000, TooBigError, declared=str(1000 + uploads.FRAMING)) == b"small"
    assert uploads.read_limited(Counting(b""), 1000, TooBigError, declared="not-a-number") == b""
