"""`sync`: bucket or folder -> the monitor's folder, atomically, deletions included."""

from __future__ import annotations

import os
import threading
import time

import pytest

from shipyard.errors import InputError
from shipyard.pulse.config import load_dir
from shipyard.pulse.sync import sync
from shipyard.store import open_store
from tests.helpers import read_outbox, wait_for

A = "- {type: http, id: a, urls: ['http://127.0.0.1:9/'], schedule: '@every 1h'}\n"
B = "- {type: tcp, id: b, hosts: ['127.0.0.1:9'], schedule: '@every 1h'}\n"


def test_mirror_update_delete(store_url, tmp_path):
    store = open_store(store_url)
    store.put("teams/a.yml", A.encode())
    store.put("b.yml", B.encode())
    store.put("README.md", b"how to add a monitor")
    target = tmp_path / "monitors"

    rep = sync(store_url, target)
    assert rep.changed and rep.files == 3 and rep.added == ["README.md", "b.yml", "teams/a.yml"]
    assert target.is_symlink() and (target / "teams" / "a.yml").read_text() == A
    assert set(load_dir(target).monitors) == {"a", "b"}
    first = target.resolve()

    # Nothing changed: no new version.
    rep = sync(store_url, target)
    assert not rep.changed and target.resolve() == first

    # An update and a deletion in the bucket show up together in one new version.
    store.put("teams/a.yml", A.replace("1h", "30s").encode())
    store.delete("b.yml")
    rep = sync(store_url, target)
    assert rep.changed and rep.updated == ["teams/a.yml"] and rep.removed == ["b.yml"] and rep.added == []
    assert target.resolve() != first
    assert set(load_dir(target).monitors) == {"a"} and not (target / "b.yml").exists()
    # The previous version is still whole for a reader that listed it before the swap.
    assert (first / "b.yml").exists()


def test_old_versions_pruned(tmp_path):
    src = tmp_path / "repo"
    src.mkdir()
    target = tmp_path / "monitors"
    for i in range(6):
        (src / "a.yml").write_text(A + f"# {i}\n")
        os.utime(src / "a.yml")
        sync(str(src), target, keep=3)
        time.sleep(0.01)
    versions = [p for p in (tmp_path / ".monitors.versions").iterdir() if p.name.startswith("v-")]
    assert len(versions) == 3 and target.resolve() in [v.resolve() for v in versions]
    assert (target / "a.yml").read_text().endswith("# 5\n")


def test_hidden_paths_skipped_and_invalid_files_reported(tmp_path):
    src = tmp_path / "repo"
    (src / ".git").mkdir(parents=True)
    (src / ".git" / "config").write_text("[core]")
    (src / "a.yml").write_text(A)
    (src / "bad.yml").write_text("- type: http\n  id: x\n  schedule: 5\n")
    rep = sync(str(src), tmp_path / "monitors")
    assert rep.files == 2 and not (tmp_path / "monitors" / ".git").exists()
    [p] = rep.problems
    assert p.where == "bad.yml:3"


def test_refuses_empty_or_missing_source(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="has no files"):
        sync(str(tmp_path / "empty"), tmp_path / "monitors")
    assert not (tmp_path / "monitors").exists()
    with pytest.raises(InputError, match="does not exist"):
        sync(str(tmp_path / "nope"), tmp_path / "monitors")
    # With --allow-empty, the monitors folder is emptied on purpose.
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "a.yml").write_text(A)
    sync(str(tmp_path / "full"), tmp_path / "monitors")
    sync(str(tmp_path / "empty"), tmp_path / "monitors", allow_empty=True)
    assert list((tmp_path / "monitors").iterdir()) == []


def test_adopts_a_folder_filled_by_hand(tmp_path):
    target = tmp_path / "monitors"
    target.mkdir()
    (target / "old.yml").write_text(B)
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "a.yml").write_text(A)
    rep = sync(str(tmp_path / "repo"), target)
    assert target.is_symlink() and rep.removed == ["old.yml"] and set(load_dir(target).monitors) == {"a"}


def test_readers_never_see_a_partial_tree(tmp_path):
    """While syncs swap versions of 30 files, a reader always sees one whole version."""
    src = tmp_path / "repo"
    src.mkdir()
    target = tmp_path / "monitors"

    def write(gen: int) -> None:
        for i in range(30):
            (src / f"m{i:02d}.yml").write_text(
                f"- {{type: http, id: m{i}, urls: ['http://h/'], schedule: '@every 1h', name: 'g{gen}'}}\n")

    write(0)
    sync(str(src), target)
    seen_mixed = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                res = load_dir(target)
            except Exception:  # noqa: BLE001 - the folder must never be missing
                seen_mixed.append("missing")
                continue
            gens = {m.name for m in res.monitors.values()}
            if len(res.monitors) != 30 or len(gens) != 1:
                seen_mixed.append(gens)

    t = threading.Thread(target=reader)
    t.start()
    for gen in range(1, 8):
        write(gen)
        sync(str(src), target)
    stop.set()
    t.join()
    assert seen_mixed == []


def test_running_monitor_picks_up_a_sync(tmp_path, s3_bucket, run_pulse):
    """repo -> bucket -> monitor: a file put in the bucket is monitored after the next sync;
    an invalid one is reported with file and line while the last good version keeps running."""
    store = open_store(s3_bucket + "/monitors")
    store.put("a.yml", A.encode())
    target = tmp_path / "etc" / "monitors"
    sync(s3_bucket + "/monitors", target)
    run = run_pulse(target)
    assert set(run.svc.monitors) == {"a"}

    store.put("b.yml", B.encode())
    sync(s3_bucket + "/monitors", target)
    run.until(lambda: set(run.svc.monitors) == {"a", "b"}, what="b loaded")

    store.put("b.yml", b"- type: tcp\n  id: b\n  hosts: [nowhere]\n  schedule: '@every 1h'\n")
    store.delete("a.yml")
    sync(s3_bucket + "/monitors", target)
    run.until(lambda: "b.yml" in run.svc.reloader.problems and "a" not in run.svc.monitors, what="reload")
    assert run.svc.monitors["b"].targets == ("127.0.0.1:9",)  # last good version
    [warn] = [n for n in wait_for(read_outbox, what="the warning") if n["level"] == "warning"]
    assert warn["title"] == "Invalid monitor file b.yml:3" and "has no port" in warn["message"]
