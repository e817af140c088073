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


def test_run_sync_from_a_bucket_inside_the_service(tmp_path, s3_bucket, run_pulse):
    """`pulse run --sync-from s3://... --sync-every 60s`: no cron; the first sync happens before
    the monitors load (the folder need not exist), later ones every `sync_every`."""
    store = open_store(s3_bucket + "/svc")
    store.put("a.yml", A.encode())
    target = tmp_path / "srv" / "monitors"
    run = run_pulse(target, sync_from=s3_bucket + "/svc", sync_every=60.0)
    assert set(run.svc.monitors) == {"a"} and target.is_symlink()
    store.put("b.yml", B.encode())
    run.step(30.0, by=10.0)
    assert set(run.svc.monitors) == {"a"}  # not before the next sync
    run.until(lambda: set(run.svc.monitors) == {"a", "b"}, seconds=60, by=5.0, what="b synced and loaded")
    assert run.svc.last_sync.added == ["b.yml"]
    store.delete("a.yml")
    store.delete("b.yml")
    run.step(61.0, by=10.0)  # an empty bucket is refused: the monitors stay
    assert set(run.svc.monitors) == {"a", "b"} and run.svc.sync_errors == 1


def test_publish_a_checkout_to_the_bucket(tmp_path, s3_bucket):
    """CI's step (`pulse sync --from . --to s3://...`): validate, put what changed, delete what
    the repo deleted; an invalid file uploads nothing."""
    repo = tmp_path / "repo"
    (repo / "teams").mkdir(parents=True)
    (repo / "teams" / "a.yml").write_text(A)
    (repo / "b.yml").write_text(B)
    (repo / ".github").mkdir()
    (repo / ".github" / "ci.yml").write_text("hidden: not a monitor\n")
    url = s3_bucket + "/published"
    rep = sync(str(repo), url)
    assert rep.added == ["b.yml", "teams/a.yml"] and rep.changed
    store = open_store(url)
    assert sorted(i.key for i in store.list("")) == ["b.yml", "teams/a.yml"]
    assert not sync(str(repo), url).changed  # same bytes: nothing put
    (repo / "b.yml").unlink()
    (repo / "teams" / "a.yml").write_text(A.replace("1h", "30s"))
    rep = sync(str(repo), url)
    assert (rep.updated, rep.removed) == (["teams/a.yml"], ["b.yml"])
    (repo / "c.yml").write_text("- type: tcp\n  id: c\n  hosts: [nowhere]\n  schedule: '@every 1h'\n")
    with pytest.raises(InputError, match="c.yml:3: tcp host 'nowhere' has no port"):
        sync(str(repo), url)
    assert sorted(i.key for i in store.list("")) == ["teams/a.yml"]
