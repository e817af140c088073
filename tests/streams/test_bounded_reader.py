"""shipyard.streams.bounded_reader: streaming decompression with a size cap and a ratio cap."""

import bz2
import gzip
import io
import resource
import zlib

import pytest

from shipyard.errors import InputError
from shipyard.settings import get_settings
from shipyard.streams import RATIO_GRACE_BYTES, bounded_reader


class Counting(io.RawIOBase):
    """A raw stream that serves `data` and records how much was read and whether it was closed."""

    def __init__(self, data: bytes) -> None:
        self._f = io.BytesIO(data)
        self.read_bytes = 0

    def readable(self):
        return True

    def readinto(self, b):
        n = self._f.readinto(b)
        self.read_bytes += n
        return n


def _all(f) -> bytes:
    with f:
        return f.read()


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lambda b: b], ids=["gzip", "bz2", "plain"])
def test_auto_detects_and_round_trips(compress):
    data = b"".join(b"%d,row %d\n" % (i, i) for i in range(50_000))
    assert _all(bounded_reader(io.BytesIO(compress(data)), name="t.csv")) == data


def test_concatenated_gzip_members_and_zero_padding_are_read_whole():
    data = gzip.compress(b"a\n") + gzip.compress(b"b\n") + b"\x00" * 100
    assert _all(bounded_reader(io.BytesIO(data), name="t.gz")) == b"a\nb\n"


def test_explicit_none_reads_as_is_even_if_it_looks_compressed():
    blob = gzip.compress(b"x")
    assert _all(bounded_reader(io.BytesIO(blob), name="t", compression=None)) == blob


@pytest.mark.slow  # a real subprocess or a big stream: seconds, not milliseconds
def test_a_gzip_bomb_of_zeros_is_refused_early_with_flat_memory():
    # 1 GiB of zeros compresses to ~1 MB: stream it compressed, never hold it.
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = b"".join(comp.compress(b"\0" * (1 << 20)) for _ in range(1024)) + comp.flush()
    assert len(bomb) < 2_000_000
    raw = Counting(bomb)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    f = bounded_reader(raw, name="input/bomb.csv.gz", max_ratio=100)
    with pytest.raises(InputError) as e:
        while f.read(1 << 20):
            pass
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert "input/bomb.csv.gz" in e.value.message and "100x" in e.value.message
    assert "SHIPYARD_LIMITS__MAX_EXPANSION_RATIO" in e.value.hint
    assert e.value.details["code"] == "expansion_ratio_exceeded"
    assert raw.read_bytes < 200_000  # refused after ~16 MiB of output, not 1 GiB
    assert grown_mb < 64, f"memory grew by {grown_mb:.0f} MB"


def test_ratio_is_not_judged_on_small_files():
    small = gzip.compress(b"\0" * (RATIO_GRACE_BYTES // 2))  # ratio ~1000x, but only 8 MiB
    assert len(_all(bounded_reader(io.BytesIO(small), name="t", max_ratio=10))) == RATIO_GRACE_BYTES // 2


def test_size_cap_applies_to_plain_and_compressed_input():
    for blob in (b"x" * 5000, gzip.compress(b"x" * 5000)):
        with pytest.raises(InputError) as e:
            _all(bounded_reader(io.BytesIO(blob), name="big.csv", max_bytes=4096))
        assert "big.csv" in e.value.message and "4,096 bytes" in e.value.message
        assert "SHIPYARD_LIMITS__MAX_DECOMPRESSED_BYTES" in e.value.hint
    assert len(_all(bounded_reader(io.BytesIO(b"x" * 4096), name="ok.csv", max_bytes=4096))) == 4096


def test_defaults_come_from_settings(monkeypatch):
    monkeypatch.setenv("SHIPYARD_LIMITS__MAX_DECOMPRESSED_BYTES", "100")
    get_settings(fresh=True)
    assert get_settings().limits.max_decompressed_bytes == 100
    with pytest.raises(InputError, match="100 bytes"):
        _all(bounded_reader(io.BytesIO(gzip.compress(b"y" * 101)), name="t.gz"))


def test_defaults_are_documented_values():
    limits = get_settings(fresh=True).limits
    assert limits.max_decompressed_bytes == 64 * 1024**3 and limits.max_expansion_ratio == 200


@pytest.mark.parametrize("blob,what", [(gzip.compress(b"abc" * 1000)[:-30], "truncated"),
                                       (b"\x1f\x8b\x08\x00garbage-garbage", "not a valid gzip")])
def test_corrupt_or_truncated_gzip_is_an_input_error(blob, what):
    with pytest.raises(InputError, match=what):
        _all(bounded_reader(io.BytesIO(blob), name="bad.gz"))


def test_zstd_is_refused_clearly():
    with pytest.raises(InputError, match="zstd"):
        bounded_reader(io.BytesIO(b"\x28\xb5\x2f\xfd" + b"\0" * 20), name="t.zst")


def test_closing_closes_the_source():
    raw = io.BytesIO(gzip.compress(b"abc"))
    f = bounded_reader(raw, name="t")
    f.close()
    assert raw.closed
