"""LocalStore stays inside its root: symlinks out are never followed (read, write, list), special
files are skipped with a warning and never block, keys are literal. And local_copy."""

import logging
import os
import threading
from pathlib import Path

import pytest

from shipyard.errors import InputError, NotFoundError
from shipyard.store import LocalStore, local_copy, open_store, spool_dir


@pytest.fixture
def outside(tmp_path) -> Path:
    d = tmp_path / "outside"
    d.mkdir()
    (d / "secret.csv").write_text("id\n42\n")
    return d


@pytest.fixture
def root(tmp_path) -> Path:
    r = tmp_path / "bucket"
    (r / "in").mkdir(parents=True)
    (r / "in" / "ok.csv").write_text("id\n1\n")
    return r


def test_symlink_out_of_the_root_is_never_read(root, outside, caplog):
    (root / "in" / "leak.csv").symlink_to(outside / "secret.csv")
    (root / "linked").symlink_to(outside, target_is_directory=True)
    store = LocalStore(root)
    with caplog.at_level(logging.WARNING, "shipyard.store"):
        assert [o.key for o in store.list("")] == ["in/ok.csv"]
    assert "outside the bucket" in caplog.text and "symlinked folder is not followed" in caplog.text
    for key in ("in/leak.csv", "linked/secret.csv"):
        with pytest.raises(InputError, match="outside the bucket"):
            store.open(key)
        with pytest.raises(InputError):
            store.head(key)
        assert not store.exists(key)
        with pytest.raises(InputError):
            with local_copy(store, key):
                pass
    assert list(store.list("linked/")) == []
    assert store.list_dirs("") == ["in/"]


def test_symlink_inside_the_root_still_works(root):
    (root / "in" / "alias.csv").symlink_to(root / "in" / "ok.csv")
    store = LocalStore(root)
    with store.open("in/alias.csv") as f:
        assert f.read() == b"id\n1\n"


def test_writes_never_go_through_a_symlinked_folder(root, outside):
    (root / "succeeded").symlink_to(outside, target_is_directory=True)
    store = LocalStore(root)
    with pytest.raises(InputError, match="outside the bucket"):
        store.put("succeeded/report.json", b"{}")
    with pytest.raises(InputError, match="outside the bucket"):
        store.move("in/ok.csv", "succeeded/ok.csv")
    assert sorted(p.name for p in outside.iterdir()) == ["secret.csv"]
    assert (root / "in" / "ok.csv").exists()


def test_a_fifo_is_skipped_and_never_blocks(root, caplog):
    os.mkfifo(root / "in" / "pipe.csv")
    store = LocalStore(root)
    done = threading.Event()
    result: dict = {}

    def go():
        try:
            with caplog.at_level(logging.WARNING, "shipyard.store"):
                result["keys"] = [o.key for o in store.list("in/")]
            for call in (store.open, store.head):
                try:
                    call("in/pipe.csv")
                except InputError as exc:
                    result.setdefault("errors", []).append(exc.message)
            result["exists"] = store.exists("in/pipe.csv")
        finally:
            done.set()

    threading.Thread(target=go, daemon=True).start()
    assert done.wait(5), "a FIFO blocked the store"
    assert result["keys"] == ["in/ok.csv"]
    assert result["errors"] and all("FIFO" in m for m in result["errors"])
    assert result["exists"] is False
    assert "a FIFO, not a regular file" in caplog.text


def test_devices_and_proc_through_symlinks_are_refused(root):
    (root / "in" / "null.csv").symlink_to("/dev/zero")
    (root / "in" / "env.csv").symlink_to("/proc/self/environ")
    store = LocalStore(root)
    assert [o.key for o in store.list("in/")] == ["in/ok.csv"]
    for key in ("in/null.csv", "in/env.csv"):
        with pytest.raises(InputError):
            store.open(key)


@pytest.mark.parametrize("name", ["a*.csv", "b[1].csv", "c?.csv", "{d,e}.csv"])
def test_keys_are_literal(root, name):
    store = LocalStore(root)
    (root / "in" / "a1.csv").write_text("wrong")
    (root / "in" / "b1.csv").write_text("wrong")
    store.put(f"in/{name}", b"right")
    assert [o.key for o in store.list(f"in/{name}")] == [f"in/{name}"]
    with store.open(f"in/{name}") as f:
        assert f.read() == b"right"
    with local_copy(store, f"in/{name}") as p:
        assert p.read_bytes() == b"right"


def test_local_copy_of_a_local_store_is_its_real_path(root):
    store = LocalStore(root)
    with local_copy(store, "in/ok.csv") as p:
        assert p == (root / "in" / "ok.csv").resolve()
    assert p.exists()  # never deleted: it is the object itself
    with pytest.raises(NotFoundError):
        with local_copy(store, "in/missing.csv"):
            pass


def test_local_copy_of_s3_is_a_spooled_temp_file_deleted_on_exit(s3_bucket):
    store = open_store(s3_bucket)
    store.put("in/x.csv.gz", b"\x1f\x8b data")
    with local_copy(store, "in/x.csv.gz", suffix=".csv.gz") as p:
        assert p.parent == spool_dir() and p.name.endswith(".csv.gz")
        assert p.name.startswith(f"{os.getpid()}-")
        assert p.read_bytes() == b"\x1f\x8b data"
    assert not p.exists()
    with pytest.raises(NotFoundError):
        with local_copy(store, "in/missing.csv"):
            pass
    assert not [f for f in spool_dir().iterdir() if f.name.startswith(f"{os.getpid()}-")]


def test_symlink_loops_are_refused_and_skipped(root):
    (root / "in" / "a.csv").symlink_to(root / "in" / "b.csv")
    (root / "in" / "b.csv").symlink_to(root / "in" / "a.csv")
    store = LocalStore(root)
    assert [o.key for o in store.list("in/")] == ["in/ok.csv"]
    with pytest.raises(InputError, match="cannot be resolved"):
        store.open("in/a.csv")


def test_a_store_rooted_in_proc_reads_nothing():
    store = LocalStore("/proc/self")
    with pytest.raises(InputError, match="pseudo-filesystem"):
        store.open("environ")
    assert not store.exists("environ")
