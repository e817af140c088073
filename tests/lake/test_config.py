"""Dataset declarations: validation names the dataset and key; paths relative to shipyard.toml."""

from __future__ import annotations

import pytest

from shipyard.errors import ConfigError, NotFoundError
from shipyard.lake.config import get_dataset, load_datasets
from shipyard.settings import get_settings


def _toml(tmp_path, body: str, where: str = "shipyard.toml"):
    p = tmp_path / where
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(body)
    return p


@pytest.mark.parametrize("body, expect", [
    ('raw = "r"\nlake = "l"\ntime = "ts"', "lake.datasets.ev.id: Field required"),
    ('raw = "r"\nlake = "l"\nid = ["a"]\ntime = "ts"\npartition_by = ["bucket(u)"]',
     "lake.datasets.ev.partition_by: 'bucket(u)' is not a partition"),
    ('raw = "r"\nlake = "l"\nid = ["a"]\ntime = "ts"\ncolour = 1', "lake.datasets.ev.colour: unknown key"),
    ('raw = "r"\nlake = "l"\nid = ["a b"]\ntime = "ts"', "lake.datasets.ev.id"),
    ('raw = "r"\nlake = "l"\nid = ["a"]\ntime = "ts"\ntime_unit = "h"', "lake.datasets.ev.time_unit"),
    ('raw = "r"\nlake = "l"\nid = ["a"]\ntime = "ts"\npartition_by = ["dt", "dt"]', "repeat"),
])
def test_bad_dataset_names_dataset_and_key(tmp_path, body, expect):
    _toml(tmp_path, "[lake.datasets.ev]\n" + body + "\n")
    get_settings(fresh=True)
    with pytest.raises(ConfigError) as ei:
        get_dataset("ev")
    assert expect in ei.value.message
    assert ei.value.hint


def test_bad_column_type_is_reported(tmp_path):
    from shipyard.lake.ingest import ingest

    _toml(tmp_path, '[lake.datasets.ev]\nraw = "r"\nlake = "l"\nid = ["a"]\ntime = "ts"\n'
                    '[lake.datasets.ev.columns]\namount = "NUMBERISH"\n')
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "a.jsonl").write_text('{"a": 1, "ts": "2021-03-01T00:00:00Z", "amount": 1}\n')
    get_settings(fresh=True)
    with pytest.raises(ConfigError, match=r"lake.datasets.ev.columns: 'amount': 'NUMBERISH' is not a SQL type"):
        ingest("ev")


def test_paths_are_relative_to_the_config_file(tmp_path, monkeypatch):
    cfg = _toml(tmp_path, '[lake.datasets.ev]\nraw = "raw/ev"\nlake = "s3://bkt/lake/ev/"\n'
                          'id = ["a"]\ntime = "ts"\n', where="conf/shipyard.toml")
    monkeypatch.setenv("SHIPYARD_CONFIG", str(cfg))
    get_settings(fresh=True)
    ds = get_dataset("ev")
    assert ds.raw_url == str(tmp_path / "conf" / "raw" / "ev")
    assert ds.lake_url == "s3://bkt/lake/ev"
    assert list(load_datasets()) == ["ev"]


def test_unknown_dataset_suggests(tmp_path):
    _toml(tmp_path, '[lake.datasets.events]\nraw = "r"\nlake = "l"\nid = ["a"]\ntime = "ts"\n')
    get_settings(fresh=True)
    with pytest.raises(NotFoundError) as ei:
        get_dataset("event")
    assert ei.value.hint == "did you mean 'events'?"


def test_layout_cannot_change_under_a_lake(local_env):
    from shipyard.lake.ingest import ingest

    from .conftest import make_events

    local_env.put("a.jsonl", make_events(5))
    ingest("events")
    local_env.write_config(partition_by=["dt", "hour"])
    with pytest.raises(ConfigError, match="partitioned by"):
        ingest("events")


def test_missing_time_field(local_env):
    from shipyard.lake.ingest import ingest

    local_env.put("a.jsonl", b'{"event_id": "a", "when": "2021-03-01T00:00:00Z"}\n')
    with pytest.raises(ConfigError, match="time column 'ts' is not in the raw records"):
        ingest("events")


def test_missing_raw_zone_is_an_error(tmp_path):
    from shipyard.lake.ingest import ingest

    _toml(tmp_path, '[lake.datasets.ev]\nraw = "raw/evnts"\nlake = "l"\nid = ["a"]\ntime = "ts"\n')
    get_settings(fresh=True)
    with pytest.raises(NotFoundError, match="raw zone .*raw/evnts does not exist"):
        ingest("ev")
    assert not (tmp_path / "raw").exists()  # not silently created
