import hashlib
import io

import pytest

from shipyard.errors import InputError, NotFoundError
from shipyard.store import open_store


def test_put_list_head_open_move_delete(store_url):
    store = open_store(store_url)
    store.put("a/b/one.csv", b"id\n1\n")
    store.put("a/b/two.csv", io.BytesIO(b"id\n2\n"))
    store.put("a/c/three.csv", b"x")
    assert [o.key for o in store.list("a/b/")] == ["a/b/one.csv", "a/b/two.csv"]
    assert [o.key for o in store.list("a/")] == ["a/b/one.csv", "a/b/two.csv", "a/c/three.csv"]
    info = store.head("a/b/one.csv")
    assert info.size == 5
    # The same bytes give the same etag on both stores (MD5 for single-part objects).
    assert info.etag == hashlib.md5(b"id\n1\n").hexdigest()
    with store.open("a/b/one.csv") as f:
        assert f.read() == b"id\n1\n"
    store.move("a/b/one.csv", "a/done/one.csv")
    assert not store.exists("a/b/one.csv")
    assert store.exists("a/done/one.csv")
    store.delete("a/done/one.csv")
    assert not store.exists("a/done/one.csv")
    with pytest.raises(NotFoundError):
        store.head("a/done/one.csv")


def test_same_content_same_etag_across_stores(tmp_path, s3_bucket):
    local, s3 = open_store(str(tmp_path / "b")), open_store(s3_bucket)
    for s in (local, s3):
        s.put("k.csv", b"hello,world\n")
    assert local.head("k.csv").etag == s3.head("k.csv").etag


@pytest.mark.parametrize("key", ["../x", "a/../../x", "/abs", "a\\b", "a/./b", ""])
def test_rejects_escaping_keys(tmp_path, key):
    store = open_store(str(tmp_path / "b"))
    with pytest.raises(InputError):
        store.put(key, b"x")


def test_s3_prefix_is_relative(s3_bucket):
    store = open_store(s3_bucket + "/team/drop")
    store.put("k.csv", b"1")
    assert [o.key for o in store.list()] == ["k.csv"]
    assert store.uri("k.csv") == s3_bucket + "/team/drop/k.csv"


def test_s3_unreachable_is_retryable(monkeypatch):
    from shipyard.errors import TransientError
    from shipyard.store.s3 import S3Store

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # Nothing listens on port 9 (discard) on loopback: a connection error, mapped as retryable.
    store = S3Store("b", endpoint_url="http://127.0.0.1:9")
    with pytest.raises(TransientError):
        store.head("k")


def test_opening_never_creates_and_must_exist_refuses(tmp_path, s3_server):
    from shipyard.errors import NotFoundError

    missing = tmp_path / "no" / "such"
    store = open_store(str(missing))
    assert not missing.exists() and list(store.list()) == []
    with pytest.raises(NotFoundError, match="does not exist"):
        open_store(str(missing), must_exist=True)
    with pytest.raises(NotFoundError):
        open_store("s3://no-such-bucket-here", must_exist=True)
    store.put("a/b.csv", b"x")  # writing creates what it needs
    assert (missing / "a" / "b.csv").read_bytes() == b"x"


def test_list_dirs_lists_one_level(store_url):
    store = open_store(store_url)
    for key in ("a/x/1.csv", "a/y/2.csv", "a/y/z/3.csv", "b/4.csv", "top.csv"):
        store.put(key, b"1")
    assert store.list_dirs("") == ["a/", "b/"]
    assert store.list_dirs("a/") == ["a/x/", "a/y/"]
    assert store.list_dirs("a/y/") == ["a/y/z/"]
    assert store.list_dirs("nope/") == []
