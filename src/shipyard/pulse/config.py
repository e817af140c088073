"""Monitor files: Heartbeat's YAML (a list of monitors per file) plus alerting options.

A file holds a YAML list; each item is one monitor, e.g.

    - type: http
      id: billing-api
      name: Billing API
      urls: ["http://billing.internal/health"]
      schedule: '@every 30s'
      check.response.status: [200]
      alert:
        channel: team-billing
        failure_threshold: 3
        success_threshold: 2
        reminder: 30m
      maintenance:
        - {start: "23:00", duration: 1h, every: [Sunday], timezone: Europe/Berlin}

Keys follow Heartbeat (https://www.elastic.co/guide/en/beats/heartbeat/current/monitor-options.html
and monitor-http-options.html / monitor-tcp-options.html); dotted keys (`check.response.status`)
and nested mappings (`check: {response: {status: ...}}`) are the same thing, as in libbeat.
What pulse does with each Heartbeat option is in pulse/options.py. Alerting follows Gatus
(https://gatus.io/docs/alerting); `-` and `_` are interchangeable in alert keys.

Every error names the file and the line, because the person who reads it is looking at a diff.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from shipyard.errors import ConfigError, did_you_mean
from shipyard.pulse import fields as f
from shipyard.pulse import kinds
from shipyard.pulse.fields import Fields
from shipyard.pulse.model import DEFAULT_TIMEOUT, ConfigProblem, Monitor
from shipyard.pulse.options import REFUSED, known_keys, lookup
from shipyard.pulse.schedule import Schedule, parse_schedule
from shipyard.pulse.yamlfile import LineList, YamlProblem, load_yaml

MONITOR_SUFFIXES = (".yml", ".yaml")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
TYPES = ("http", "tcp", "tls", "push", "dns", "icmp")


@dataclass(frozen=True)
class ParseLimits:
    """What a monitor file may ask for (pulse settings; docs/security.md)."""

    min_interval: float = 1.0
    max_file_bytes: int = 1_000_000
    max_yaml_nodes: int = 100_000

    @classmethod
    def from_settings(cls, pulse: Any) -> "ParseLimits":
        return cls(pulse.min_interval, pulse.max_file_bytes, pulse.max_yaml_nodes)


def _check_keys(fx: Fields) -> None:
    for key, (_, kline) in fx.flat.items():
        entry = lookup(key)
        if entry is None:
            raise ConfigProblem(fx.file, kline, f"unknown key {key!r}",
                                did_you_mean(key, known_keys(), cutoff=0.7))
        if entry[0] == REFUSED:
            raise ConfigProblem(fx.file, kline, f"{key} is not supported by pulse: {entry[1]}")


def _targets(fx: Fields, mid: str, mtype: str, found: list[str]) -> dict[str, Any]:
    # Heartbeat's http monitor takes `urls` (older) or `hosts`; tcp/tls take hosts (host:port,
    # or host plus `ports`).
    tkey = "urls" if fx.has("urls") else "hosts"
    targets = f.str_list(fx.get(tkey))
    if not targets:
        raise fx.problem(tkey if fx.has(tkey) else None,
                         f"monitor {mid!r} has no {'urls' if mtype == 'http' else 'hosts'}",
                         "list at least one, e.g. urls: ['http://service:8080/health']"
                         if mtype == "http" else "list at least one, e.g. hosts: ['db.internal:5432']")
    if mtype == "http":
        return kinds.http(fx, targets, found)
    if mtype == "dns":
        return kinds.dns_(fx, targets)
    if mtype == "icmp":
        return kinds.icmp(fx, targets, kinds.icmp_available())
    return kinds.tcp(fx, targets)  # tcp, tls


def parse_monitor(item: Any, file: str, line: int, limits: ParseLimits = ParseLimits(),
                  secrets: tuple[str, ...] = ()) -> Monitor:
    """One list item -> a Monitor, or ConfigProblem naming file and line."""
    if not isinstance(item, dict):
        raise ConfigProblem(file, line, "each monitor must be a mapping (type, id, schedule, ...)")
    fx = Fields(item, file, getattr(item, "line", line))
    _check_keys(fx)
    mid = fx.get("id")
    if mid is None:
        raise fx.problem(None, "monitor has no 'id'",
                         "add a unique id, e.g. id: billing-api (it names the monitor in alerts and history)")
    mid = str(mid)
    if not _ID_RE.match(mid):
        raise fx.problem("id", f"id {mid!r} is not valid",
                         "use letters, digits, '-', '_', '.', ':' (at most 128 characters)")
    mtype = fx.get("type")
    if mtype not in TYPES:
        raise fx.problem("type", f"monitor {mid!r}: type {mtype!r} is not supported", f"use one of {', '.join(TYPES)}")
    found: list[str] = list(secrets)
    if mtype == "push":
        # A push monitor has no schedule of its own: whether a ping is overdue is looked at
        # every second (no I/O), so a miss is seen within a second of every + grace.
        kw = kinds.push(fx, found)
        if kw["push_every"] < limits.min_interval:
            raise fx.problem("every", f"every {fx.get('every')!r} is shorter than {limits.min_interval:g}s",
                             "the shortest interval is pulse.min_interval")
        schedule = Schedule(text=f"push every {fx.get('every')}", every=1.0)
    else:
        if not fx.has("schedule"):
            raise fx.problem(None, f"monitor {mid!r} has no 'schedule'", "add e.g. schedule: '@every 30s'")
        try:
            schedule = parse_schedule(fx.get("schedule"))
        except ValueError as exc:
            raise fx.problem("schedule", str(exc)) from None
        if schedule.shortest_gap(0.0) < limits.min_interval:
            raise fx.problem("schedule", f"schedule {schedule.text!r} runs more often than every "
                                         f"{limits.min_interval:g}s", "the shortest interval is pulse.min_interval")
    enabled = f.boolean(fx.get("enabled", True), file, fx.at("enabled"), "enabled")
    timeout = f.duration(fx.get("timeout", DEFAULT_TIMEOUT), file, fx.at("timeout"), "timeout")
    ipv4 = f.boolean(fx.get("ipv4", True), file, fx.at("ipv4"), "ipv4")
    ipv6 = f.boolean(fx.get("ipv6", True), file, fx.at("ipv6"), "ipv6")
    if not (ipv4 or ipv6):
        raise fx.problem("ipv6", "ipv4 and ipv6 are both false: no address can be checked")
    mode = fx.get("mode", "any")
    if mode not in ("any", "all"):
        raise fx.problem("mode", f"mode {mode!r} is not valid", "use mode: any or mode: all")

    if mtype != "push":
        kw = _targets(fx, mid, mtype, found)
    kw.update(f.alerting(fx.get, fx.has, fx.at, file))
    kw["tls"] = f.tls(fx.get, fx.has, fx.at, file)
    if kw["tls"].key_passphrase:
        found.append(kw["tls"].key_passphrase)
    return Monitor(id=mid, type=mtype, schedule=schedule, name=str(fx.get("name", "") or ""), enabled=enabled,
                   timeout=timeout, mode=mode, ipv4=ipv4, ipv6=ipv6, file=file, line=fx.line,
                   secrets=tuple(sorted({s for s in found if s})), **kw)


def parse_text(text: str, file: str, limits: ParseLimits = ParseLimits(),
               env: Mapping[str, str] | None = None) -> list[Monitor]:
    """Parse one file's text -> its monitors (ids unique within the file)."""
    if len(text) > limits.max_file_bytes:
        raise ConfigProblem(file, None, f"file is larger than {limits.max_file_bytes:,} bytes",
                            "split it, or raise pulse.max_file_bytes")
    try:
        doc, secrets = load_yaml(text, max_nodes=limits.max_yaml_nodes, env=env)
    except YamlProblem as exc:
        raise ConfigProblem(file, exc.line, exc.message, exc.hint) from None
    if doc is None:
        return []
    if isinstance(doc, dict) and "heartbeat.monitors" in doc:
        doc = doc["heartbeat.monitors"]  # a heartbeat.yml with an inline list is accepted too
    elif isinstance(doc, dict) and isinstance(doc.get("heartbeat"), dict) and "monitors" in doc["heartbeat"]:
        doc = doc["heartbeat"]["monitors"]
    if isinstance(doc, dict):
        doc_list = LineList([doc])
        doc_list.item_lines = [doc.line]
        doc = doc_list
    if not isinstance(doc, list):
        raise ConfigProblem(file, 1, "a monitor file must hold a YAML list of monitors",
                            "start each monitor with '- type: http'")
    out: list[Monitor] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(doc):
        m = parse_monitor(item, file, doc.item_lines[i] if isinstance(doc, LineList) else 1, limits, tuple(secrets))
        if m.id in seen:
            raise ConfigProblem(file, m.line, f"duplicate monitor id {m.id!r}; also at {file}:{seen[m.id]}",
                                "ids must be unique across all monitor files")
        seen[m.id] = m.line
        out.append(m)
    return out


def parse_file(path: Path, name: str | None = None, limits: ParseLimits = ParseLimits()) -> list[Monitor]:
    name = name or str(path)
    try:
        size = path.stat().st_size
        if size > limits.max_file_bytes:
            raise ConfigProblem(name, None, f"file is larger than {limits.max_file_bytes:,} bytes",
                                "split it, or raise pulse.max_file_bytes")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigProblem(name, None, "not UTF-8 text") from None
    except OSError as exc:
        raise ConfigProblem(name, None, f"cannot read: {exc.strerror or exc}") from None
    return parse_text(text, name, limits)


def monitor_files(config_dir: Path) -> list[Path]:
    """Monitor files under `config_dir` (recursively, following the sync's symlink), sorted."""
    root = Path(config_dir)
    out = []
    for p in root.rglob("*"):
        if p.suffix in MONITOR_SUFFIXES and p.is_file() and not any(
                part.startswith(".") for part in p.relative_to(root).parts):
            out.append(p)
    return sorted(out)


@dataclass
class LoadResult:
    monitors: dict[str, Monitor] = field(default_factory=dict)
    problems: list[ConfigProblem] = field(default_factory=list)
    by_file: dict[str, list[Monitor]] = field(default_factory=dict)


def merge(files: dict[str, list[Monitor]]) -> LoadResult:
    """Merge per-file monitors in file order; a duplicate id across files is a problem of the
    later file, naming both."""
    res = LoadResult()
    for name in sorted(files):
        mons = files[name]
        dup = next((m for m in mons if m.id in res.monitors), None)
        if dup is not None:
            first = res.monitors[dup.id]
            res.problems.append(ConfigProblem(
                name, dup.line, f"monitor id {dup.id!r} is already defined in {first.file}:{first.line}",
                "ids must be unique across all monitor files; rename one of them"))
            continue
        res.by_file[name] = mons
        for m in mons:
            res.monitors[m.id] = m
    return res


def load_dir(config_dir: Path, limits: ParseLimits = ParseLimits()) -> LoadResult:
    """Parse every monitor file under `config_dir`; problems are collected, not raised."""
    # Resolve the sync's symlink once: every file then comes from the same version, even if
    # a sync swaps versions while we read.
    root = Path(os.path.realpath(config_dir))
    if not root.is_dir():
        raise ConfigError(f"monitor config directory {str(config_dir)!r} does not exist",
                          hint="create it, or run `shipyard pulse sync --from ... --to DIR` first")
    files: dict[str, list[Monitor]] = {}
    problems: list[ConfigProblem] = []
    for p in monitor_files(root):
        name = str(p.relative_to(root))
        try:
            files[name] = parse_file(p, name, limits)
        except ConfigProblem as exc:
            problems.append(exc)
    res = merge(files)
    res.problems[:0] = problems
    return res
