"""Bounded, streaming decompression for every tool that reads user files.

    with bounded_reader(store.open(key), name=key) as f:   # gzip/bz2 detected by magic
        for chunk in iter(lambda: f.read(1 << 20), b""):
            ...

The reader never holds more than one chunk of output: memory stays flat whatever the file. It
raises `InputError` (naming the file, the limit and the setting that raises it) as soon as

* the decompressed bytes pass `max_bytes` (default `limits.max_decompressed_bytes`), or
* the decompressed bytes pass `max_ratio` x the compressed bytes read so far (default
  `limits.max_expansion_ratio`); the ratio is checked only once the output passes
  `RATIO_GRACE_BYTES`, so a small, very repetitive file is never refused for its ratio.

A gzip bomb (4.6 MB of zeros -> 4.6 GB) is therefore refused after ~16 MiB of output. Concatenated
gzip members and bz2 streams are read whole (that is what gzip(1) does). zstd is recognised by
its magic and refused with a clear error (no zstd decoder is installed).

gzip is inflated by ISA-L (`isal`, the same DEFLATE, ~1.8x less CPU than zlib here: 0.13 vs
0.23 CPU-s for a 67 MB JSON-lines object, 2026-11-30) when it is installed, else by zlib.
"""

from __future__ import annotations

import bz2
import io
import zlib
from typing import Any, BinaryIO

try:  # ISA-L's inflate: the same API as zlib's, faster (see the module docstring)
    from isal import isal_zlib as _inflate

    _INFLATE_ERRORS: tuple[type[Exception], ...] = (zlib.error, _inflate.error)
except ImportError:  # pragma: no cover - a platform without isal's wheels
    _inflate = zlib  # type: ignore[assignment]
    _INFLATE_ERRORS = (zlib.error,)

from shipyard.errors import InputError
from shipyard.settings import get_settings

CHUNK = 1 << 16
# The expansion ratio is only judged past this much output (see the module docstring).
RATIO_GRACE_BYTES = 16 * 1024 * 1024

_GZIP_MAGIC = b"\x1f\x8b"
_BZ2_MAGIC = b"BZh"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_COMPRESSIONS = ("auto", "gzip", "bz2", "zstd", "none")


def sniff_compression(head: bytes) -> str | None:
    """'gzip', 'bz2', 'zstd' or None for the first bytes of a file."""
    if head.startswith(_GZIP_MAGIC):
        return "gzip"
    if head.startswith(_BZ2_MAGIC) and len(head) >= 4 and head[3:4].isdigit():
        return "bz2"
    if head.startswith(_ZSTD_MAGIC):
        return "zstd"
    return None


def _human(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return str(n)  # pragma: no cover


class _Bounded(io.RawIOBase):
    """Decompresses `raw` chunk by chunk and counts bytes in and out against the limits."""

    def __init__(self, raw: BinaryIO, head: bytes, kind: str | None, name: str,
                 max_bytes: int | None, max_ratio: float | None) -> None:
        self._raw = raw
        self._pending_in = head  # bytes read while sniffing, not yet fed
        self._kind = kind
        self._name = name
        self._max_bytes = max_bytes
        self._max_ratio = max_ratio
        self._dec: Any = self._new_decompressor()
        self._out = b""  # decompressed, not yet returned (at most one chunk's worth), from _pos
        self._pos = 0
        self._eof = False
        self.bytes_in = 0
        self.bytes_out = 0

    def _new_decompressor(self) -> Any:
        if self._kind == "gzip":
            return _inflate.decompressobj(16 + zlib.MAX_WBITS)
        if self._kind == "bz2":
            return bz2.BZ2Decompressor()
        return None

    def readable(self) -> bool:
        return True

    def _read_in(self) -> bytes:
        if self._pending_in:
            data, self._pending_in = self._pending_in, b""
        else:
            data = self._raw.read(CHUNK)
        self.bytes_in += len(data)
        return data

    def _check(self) -> None:
        if self._max_bytes is not None and self.bytes_out > self._max_bytes:
            raise InputError(
                f"{self._name}: decompressed size passed the limit of {_human(self._max_bytes)} "
                f"({self._max_bytes:,} bytes)",
                hint="raise SHIPYARD_LIMITS__MAX_DECOMPRESSED_BYTES ([limits] max_decompressed_bytes in "
                     "shipyard.toml) if the file is genuine, or split it",
                code="decompressed_too_large", limit="limits.max_decompressed_bytes")
        if (self._max_ratio is not None and self._kind is not None and self.bytes_out > RATIO_GRACE_BYTES
                and self.bytes_out > self._max_ratio * max(self.bytes_in, 1)):
            raise InputError(
                f"{self._name}: expands more than {self._max_ratio:g}x when decompressed "
                f"({_human(self.bytes_in)} read gave {_human(self.bytes_out)}): refused as a "
                "decompression bomb",
                hint="raise SHIPYARD_LIMITS__MAX_EXPANSION_RATIO ([limits] max_expansion_ratio in "
                     "shipyard.toml) if the file is genuine",
                code="expansion_ratio_exceeded", limit="limits.max_expansion_ratio")

    def _fill(self) -> None:
        """Put up to one chunk of output in self._out, or set self._eof."""
        while self._pos >= len(self._out) and not self._eof:
            self._pos = 0
            if self._dec is None:  # no compression: the size cap still applies
                self._out = self._read_in()
                self._eof = not self._out
            else:
                self._out = self._step()
            self.bytes_out += len(self._out)
            self._check()

    def _step(self) -> bytes:
        """At most CHUNK bytes of output from the decompressor (b"" when it needs more input)."""
        dec = self._dec
        try:
            if dec.eof:  # the end of one gzip member / bz2 stream: another may follow
                rest = dec.unused_data.lstrip(b"\x00")  # gzip(1) ignores zero padding at the end
                while not rest:
                    more = self._read_in()
                    if not more:
                        self._eof = True
                        return b""
                    rest = more.lstrip(b"\x00")
                self._dec = self._new_decompressor()
                return self._dec.decompress(rest, CHUNK)
            if self._kind == "gzip" and dec.unconsumed_tail:
                return dec.decompress(dec.unconsumed_tail, CHUNK)
            if self._kind == "bz2" and not dec.needs_input:
                return dec.decompress(b"", CHUNK)
            data = self._read_in()
            if not data:
                raise InputError(f"{self._name}: the {self._kind} stream ends early (truncated file)",
                                 hint="upload the whole file again", code="truncated")
            return dec.decompress(data, CHUNK)
        except (*_INFLATE_ERRORS, OSError, EOFError, ValueError) as exc:
            raise InputError(f"{self._name}: not a valid {self._kind} file ({exc})",
                             hint="check the file; a name ending in .gz must hold gzip data",
                             code="corrupt_compression") from None

    def readinto(self, b: Any) -> int:
        self._fill()
        left = len(self._out) - self._pos
        if left <= 0:
            return 0
        n = min(len(b), left)
        b[:n] = memoryview(self._out)[self._pos:self._pos + n]
        self._pos += n
        return n

    def close(self) -> None:
        if not self.closed:
            try:
                self._raw.close()
            finally:
                super().close()


def bounded_reader(raw: BinaryIO, *, name: str, compression: str | None = "auto",
                   max_bytes: int | None = None, max_ratio: float | None = None) -> BinaryIO:
    """`raw` decompressed as a stream, refused with InputError past the size or ratio limits.

    `compression`: "auto" (by magic bytes), "gzip", "bz2", or None / "none" (read as is; the
    size cap still applies). Limits default to settings.limits; the reader closes `raw`.
    """
    if compression not in _COMPRESSIONS and compression is not None:
        raise ValueError(f"compression must be one of {_COMPRESSIONS} or None, not {compression!r}")
    if max_bytes is None or max_ratio is None:
        limits = get_settings().limits
        max_bytes = limits.max_decompressed_bytes if max_bytes is None else max_bytes
        max_ratio = limits.max_expansion_ratio if max_ratio is None else max_ratio
    head = b""
    kind: str | None
    if compression == "auto":
        while len(head) < 4:
            more = raw.read(4 - len(head))
            if not more:
                break
            head += more
        kind = sniff_compression(head)
    else:
        kind = None if compression in (None, "none") else compression
    if kind == "zstd":
        raw.close()
        raise InputError(f"{name}: zstd-compressed files are not supported",
                         hint="recompress with gzip (or upload it uncompressed)", code="unsupported_compression")
    return io.BufferedReader(_Bounded(raw, head, kind, name, max_bytes, max_ratio), CHUNK)  # type: ignore[return-value]


__all__ = ["bounded_reader", "sniff_compression", "RATIO_GRACE_BYTES"]
