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
Alerting follows Gatus (https://gatus.io/docs/alerting): failure-threshold (default 3),
success-threshold (default 2), send-on-resolved (default true); `-` and `_` are interchangeable.

Every error names the file and the line, because the person who reads it is looking at a diff.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from shipyard.errors import ConfigError, did_you_mean
from shipyard.pulse.schedule import Schedule, parse_duration, parse_schedule

MONITOR_SUFFIXES = (".yml", ".yaml")
DEFAULT_TIMEOUT = 16.0  # Heartbeat's default `timeout` is 16s.
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
_DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


class ConfigProblem(Exception):
    """One problem in one file, at one line."""

    def __init__(self, file: str, line: int | None, message: str, hint: str | None = None) -> None:
        self.file, self.line, self.message, self.hint = file, line, message, hint
        super().__init__(self.where + ": " + message)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    def __str__(self) -> str:
        s = f"{self.where}: {self.message}"
        return f"{s} (hint: {self.hint})" if self.hint else s


# --- YAML with line numbers ------------------------------------------------------------------


class _LineDict(dict):
    line: int = 0
    key_lines: dict[str, int]


class _LineList(list):
    line: int = 0
    item_lines: list[int]


# libyaml's parser when PyYAML was built with it (5-10x faster on a thousand monitors); it
# reports the same marks (line numbers) as the pure-Python one.
class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _LineDict:
    loader.flatten_mapping(node)
    out = _LineDict()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, float, bool)):
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain value", key_node.start_mark)
        key = str(key)
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> _LineList:
    out = _LineList(loader.construct_object(n, deep=True) for n in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [n.start_mark.line + 1 for n in node.value]
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


# --- the model -------------------------------------------------------------------------------


@dataclass(frozen=True)
class MaintenanceWindow:
    """Either a daily window (`start` HH:MM + `duration`, optional weekdays and timezone, as in
    Gatus) or a one-off window (`from` .. `to`, ISO 8601)."""

    start_minute: int | None = None
    duration: float = 0.0
    days: frozenset[int] = frozenset(range(7))
    tz: str = "UTC"
    date_from: float | None = None
    date_to: float | None = None

    def contains(self, ts: float) -> bool:
        if self.date_from is not None:
            return self.date_from <= ts < (self.date_to or 0)
        zone = ZoneInfo(self.tz)
        local = datetime.fromtimestamp(ts, zone)
        # A window that starts late on one day can run past midnight: look at today and the
        # day before.
        for back in (0, 1):
            day = (local - timedelta(days=back)).date()
            if day.weekday() not in self.days:
                continue
            begin = datetime(day.year, day.month, day.day, tzinfo=zone) + timedelta(
                minutes=self.start_minute or 0)
            if begin.timestamp() <= ts < begin.timestamp() + self.duration:
                return True
        return False


@dataclass(frozen=True)
class JsonCheck:
    description: str
    op: str  # equals | contains | regexp
    path: str
    value: Any

    def passes(self, doc: Any) -> bool:
        cur = doc
        for part in self.path.split("."):
            if isinstance(cur, dict) and part in cur:
                cur = cur[part]
            elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
                cur = cur[int(part)]
            else:
                return False
        if self.op == "equals":
            return cur == self.value
        if self.op == "contains":
            return isinstance(cur, (str, list)) and self.value in cur
        return isinstance(cur, str) and re.search(self.value, cur) is not None


@dataclass(frozen=True)
class Monitor:
    id: str
    type: str
    targets: tuple[str, ...]
    schedule: Schedule
    name: str = ""
    enabled: bool = True
    timeout: float = DEFAULT_TIMEOUT
    # http
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None
    username: str | None = None
    password: str | None = None
    max_redirects: int = 0
    status: tuple[int, ...] = ()
    body_patterns: tuple[str, ...] = ()
    response_headers: tuple[tuple[str, str], ...] = ()
    json_checks: tuple[JsonCheck, ...] = ()
    # tcp
    send: str | None = None
    receive: str | None = None
    # alerting
    channel: str | None = None
    failure_threshold: int = 3
    success_threshold: int = 2
    send_on_resolved: bool = True
    reminder: float | None = None
    maintenance: tuple[MaintenanceWindow, ...] = ()
    # where it came from
    file: str = ""
    line: int = 0

    @property
    def display_name(self) -> str:
        return self.name or self.id

    def in_maintenance(self, ts: float) -> bool:
        return any(w.contains(ts) for w in self.maintenance)

    def fingerprint(self) -> str:
        """Changes when anything that affects checking changes (a reload keeps unchanged ones)."""
        d = {k: v for k, v in self.__dict__.items() if k not in ("file", "line")}
        return hashlib.sha1(repr(sorted(d.items())).encode()).hexdigest()


# --- parsing ---------------------------------------------------------------------------------

# Keys whose value is a mapping kept whole (not flattened into dotted keys).
_LEAF_MAPPINGS = {"check.request.headers", "check.request.body", "check.response.headers", "fields"}

_KNOWN = {
    "type", "id", "name", "enabled", "schedule", "timeout", "hosts", "urls", "ports",
    "check.request.method", "check.request.headers", "check.request.body",
    "check.response.status", "check.response.body", "check.response.headers",
    "check.response.json", "check.send", "check.receive",
    "max_redirects", "username", "password",
    "alert.channel", "alert.failure_threshold", "alert.success_threshold",
    "alert.send_on_resolved", "alert.reminder", "alert.reminder_interval",
    "maintenance",
}
# Heartbeat options that are accepted (so a Heartbeat file loads) but have no effect here.
_IGNORED_PREFIXES = ("tags", "fields", "fields_under_root", "processors", "service.", "mode",
                     "ipv4", "ipv6", "ssl.", "proxy_url", "proxy_headers", "supported_protocols",
                     "response.", "data_stream", "index", "pipeline",
                     "run_from")


def _flatten(d: _LineDict, prefix: str, out: dict[str, tuple[Any, int]], base_line: int) -> None:
    for k, v in d.items():
        key = f"{prefix}{k}"
        if key.startswith("alert."):
            key = key.replace("-", "_")
        line = getattr(d, "key_lines", {}).get(k, base_line)
        if isinstance(v, dict) and key not in _LEAF_MAPPINGS:
            _flatten(v, key + ".", out, line)
        else:
            out[key] = (v, line)


def _suggest(key: str) -> str | None:
    return did_you_mean(key, sorted(_KNOWN), cutoff=0.7)


def _str_list(v: Any) -> list[str] | None:
    if isinstance(v, str):
        return [v]
    if isinstance(v, list) and all(isinstance(x, (str, int)) for x in v):
        return [str(x) for x in v]
    return None


def _parse_window(v: Any, file: str, line: int) -> MaintenanceWindow:
    if not isinstance(v, dict):
        raise ConfigProblem(file, line, "a maintenance window must be a mapping",
                            "write {start: '23:00', duration: 1h} or {from: <ISO time>, to: <ISO time>}")
    line = getattr(v, "line", line)
    keys = set(v)
    if "from" in keys or "to" in keys:
        extra = keys - {"from", "to"}
        if extra or not {"from", "to"} <= keys:
            raise ConfigProblem(file, line, "a one-off maintenance window takes exactly 'from' and 'to'")
        try:
            lo, hi = (_iso(v["from"]), _iso(v["to"]))
        except ValueError as exc:
            raise ConfigProblem(file, line, f"maintenance window: {exc}",
                                "write ISO 8601 times with a zone, e.g. 2026-11-28T22:00:00Z") from None
        if hi <= lo:
            raise ConfigProblem(file, line, "maintenance window: 'to' must be after 'from'")
        return MaintenanceWindow(date_from=lo, date_to=hi)
    extra = keys - {"start", "duration", "every", "timezone"}
    if extra:
        raise ConfigProblem(file, line, f"unknown maintenance key(s): {', '.join(sorted(extra))}",
                            "a daily window takes start, duration, every, timezone")
    start = str(v.get("start", ""))
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", start)
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise ConfigProblem(file, line, f"maintenance start {start!r} is not a time of day",
                            "write it as HH:MM, e.g. '23:00'")
    try:
        duration = parse_duration(v.get("duration"))
    except ValueError as exc:
        raise ConfigProblem(file, line, f"maintenance duration: {exc}") from None
    if not 0 < duration <= 86400:
        raise ConfigProblem(file, line, "maintenance duration must be more than 0 and at most 24h")
    days = frozenset(range(7))
    if "every" in v:
        names = _str_list(v["every"])
        if not names:
            raise ConfigProblem(file, line, "maintenance 'every' must be a list of weekdays")
        bad = [n for n in names if n.lower() not in _DAYS]
        if bad:
            raise ConfigProblem(file, line, f"maintenance 'every': {bad[0]!r} is not a weekday",
                                "use Monday .. Sunday")
        days = frozenset(_DAYS.index(n.lower()) for n in names)
    tz = str(v.get("timezone", "UTC"))
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigProblem(file, line, f"unknown timezone {tz!r}", "use an IANA name such as Europe/Berlin") from None
    return MaintenanceWindow(start_minute=int(m.group(1)) * 60 + int(m.group(2)), duration=duration,
                             days=days, tz=tz)


def _iso(v: Any) -> float:
    if isinstance(v, datetime):
        dt = v
    else:
        dt = datetime.fromisoformat(str(v).replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def _parse_json_checks(v: Any, file: str, line: int) -> tuple[JsonCheck, ...]:
    if not isinstance(v, list):
        raise ConfigProblem(file, line, "check.response.json must be a list of {description, condition}")
    out = []
    for i, item in enumerate(v):
        iline = v.item_lines[i] if isinstance(v, _LineList) else line
        if not isinstance(item, dict) or "condition" not in item:
            raise ConfigProblem(file, iline, "each check.response.json item needs a 'condition'",
                                "e.g. {description: healthy, condition: {equals: {status: ok}}}")
        cond = item["condition"]
        if not isinstance(cond, dict) or len(cond) != 1:
            raise ConfigProblem(file, iline, "a json condition has exactly one operator",
                                "use one of equals, contains, regexp")
        op, arg = next(iter(cond.items()))
        if op not in ("equals", "contains", "regexp"):
            raise ConfigProblem(file, iline, f"json condition {op!r} is not supported",
                                "use one of equals, contains, regexp")
        if not isinstance(arg, dict) or not arg:
            raise ConfigProblem(file, iline, f"{op} takes a mapping of field -> value")
        for path, value in arg.items():
            if op == "regexp":
                try:
                    re.compile(str(value))
                except re.error as exc:
                    raise ConfigProblem(file, iline, f"bad regexp {value!r}: {exc}") from None
                value = str(value)
            out.append(JsonCheck(str(item.get("description", path)), op, str(path), value))
    return tuple(out)


def _pairs(v: Any, file: str, line: int, key: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(v, dict):
        raise ConfigProblem(file, line, f"{key} must be a mapping of header -> value")
    return tuple((str(k), str(x)) for k, x in v.items())


def parse_monitor(item: Any, file: str, line: int) -> Monitor:
    """One list item -> a Monitor, or ConfigProblem naming file and line."""
    if not isinstance(item, dict):
        raise ConfigProblem(file, line, "each monitor must be a mapping (type, id, schedule, ...)")
    line = getattr(item, "line", line)
    flat: dict[str, tuple[Any, int]] = {}
    _flatten(item, "", flat, line)

    def get(key: str, default: Any = None) -> Any:
        return flat[key][0] if key in flat else default

    def at(key: str) -> int:
        return flat[key][1] if key in flat else line

    for key, (_, kline) in flat.items():
        if key in _KNOWN or any(key == p or key.startswith(p if p.endswith(".") else p + ".")
                                for p in _IGNORED_PREFIXES):
            continue
        raise ConfigProblem(file, kline, f"unknown key {key!r}", _suggest(key))

    mid = get("id")
    if mid is None:
        raise ConfigProblem(file, line, "monitor has no 'id'",
                            "add a unique id, e.g. id: billing-api (it names the monitor in alerts and history)")
    mid = str(mid)
    if not _ID_RE.match(mid):
        raise ConfigProblem(file, at("id"), f"id {mid!r} is not valid",
                            "use letters, digits, '-', '_', '.', ':' (at most 128 characters)")
    mtype = get("type")
    if mtype not in ("http", "tcp"):
        raise ConfigProblem(file, at("type") if "type" in flat else line,
                            f"monitor {mid!r}: type {mtype!r} is not supported", "use type: http or type: tcp")
    if "schedule" not in flat:
        raise ConfigProblem(file, line, f"monitor {mid!r} has no 'schedule'", "add e.g. schedule: '@every 30s'")
    try:
        schedule = parse_schedule(get("schedule"))
    except ValueError as exc:
        raise ConfigProblem(file, at("schedule"), str(exc)) from None
    enabled = get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigProblem(file, at("enabled"), "enabled must be true or false")
    try:
        timeout = parse_duration(get("timeout", DEFAULT_TIMEOUT))
    except ValueError as exc:
        raise ConfigProblem(file, at("timeout"), f"timeout: {exc}") from None
    if timeout <= 0:
        raise ConfigProblem(file, at("timeout"), "timeout must be more than 0")

    # Targets: Heartbeat's http monitor takes `urls` (older) or `hosts`; tcp takes hosts
    # (host:port, or host plus `ports`).
    tkey = "urls" if "urls" in flat else "hosts"
    targets = _str_list(get(tkey))
    if not targets:
        raise ConfigProblem(file, at(tkey) if tkey in flat else line,
                            f"monitor {mid!r} has no {'urls' if mtype == 'http' else 'hosts'}",
                            "list at least one, e.g. urls: ['http://service:8080/health']"
                            if mtype == "http" else "list at least one, e.g. hosts: ['db.internal:5432']")
    kw: dict[str, Any] = {}
    if mtype == "http":
        for t in targets:
            if not re.match(r"^https?://[^/\s]+", t):
                raise ConfigProblem(file, at(tkey), f"{t!r} is not an http(s) URL",
                                    "write the full URL, e.g. http://service:8080/health")
        method = str(get("check.request.method", "GET")).upper()
        if method not in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
            raise ConfigProblem(file, at("check.request.method"), f"HTTP method {method!r} is not valid")
        kw["method"] = method
        if "check.request.headers" in flat:
            kw["headers"] = _pairs(get("check.request.headers"), file, at("check.request.headers"),
                                   "check.request.headers")
        if "check.request.body" in flat:
            b = get("check.request.body")
            if isinstance(b, str):
                kw["body"] = b
            else:  # a mapping or list is sent as JSON, labelled so unless the file says otherwise
                kw["body"] = json.dumps(b)
                if not any(k.lower() == "content-type" for k, _ in kw.get("headers", ())):
                    kw["headers"] = (*kw.get("headers", ()), ("Content-Type", "application/json"))
        if "check.response.status" in flat:
            st = get("check.response.status")
            st = [st] if isinstance(st, int) and not isinstance(st, bool) else st
            if not isinstance(st, list) or not st or not all(
                    isinstance(x, int) and not isinstance(x, bool) and 100 <= x <= 599 for x in st):
                raise ConfigProblem(file, at("check.response.status"),
                                    "check.response.status must be a list of HTTP status codes",
                                    "e.g. check.response.status: [200, 204]")
            kw["status"] = tuple(st)
        if "check.response.body" in flat:
            pats = _str_list(get("check.response.body"))
            if not pats:
                raise ConfigProblem(file, at("check.response.body"),
                                    "check.response.body must be a regex or a list of regexes")
            for p in pats:
                try:
                    re.compile(p)
                except re.error as exc:
                    raise ConfigProblem(file, at("check.response.body"), f"bad regex {p!r}: {exc}") from None
            kw["body_patterns"] = tuple(pats)
        if "check.response.headers" in flat:
            kw["response_headers"] = _pairs(get("check.response.headers"), file,
                                            at("check.response.headers"), "check.response.headers")
        if "check.response.json" in flat:
            kw["json_checks"] = _parse_json_checks(get("check.response.json"), file, at("check.response.json"))
        mr = get("max_redirects", 0)
        if not isinstance(mr, int) or isinstance(mr, bool) or mr < 0:
            raise ConfigProblem(file, at("max_redirects"), "max_redirects must be a whole number >= 0")
        kw["max_redirects"] = mr
        if "username" in flat:
            kw["username"] = str(get("username"))
            kw["password"] = str(get("password", ""))
    else:
        ports = get("ports")
        if ports is not None and not isinstance(ports, list):
            ports = [ports]
        full = []
        for t in targets:
            if re.match(r"^.+:\d+$", t):
                full.append(t)
            elif ports:
                full.extend(f"{t}:{p}" for p in ports)
            else:
                raise ConfigProblem(file, at(tkey), f"tcp host {t!r} has no port",
                                    "write host:port, or add ports: [5432]")
        for t in full:
            port = int(t.rsplit(":", 1)[1])
            if not 0 < port < 65536:
                raise ConfigProblem(file, at(tkey), f"port in {t!r} is out of range")
        targets = full
        for k in ("check.request.method", "check.response.status", "check.response.body"):
            if k in flat:
                raise ConfigProblem(file, at(k), f"{k} applies to http monitors, not tcp",
                                    "tcp monitors take check.send / check.receive")
        if "check.send" in flat:
            kw["send"] = str(get("check.send"))
        if "check.receive" in flat:
            kw["receive"] = str(get("check.receive"))

    # Alerting (Gatus semantics).
    for key, attr, lo in (("alert.failure_threshold", "failure_threshold", 1),
                          ("alert.success_threshold", "success_threshold", 1)):
        if key in flat:
            v = get(key)
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise ConfigProblem(file, at(key), f"{key.split('.')[1]} must be a whole number >= {lo}")
            kw[attr] = v
    if "alert.channel" in flat:
        ch = get("alert.channel")
        if not isinstance(ch, str) or not ch.strip():
            raise ConfigProblem(file, at("alert.channel"), "alert.channel must be a channel name")
        kw["channel"] = ch.strip().lstrip("#")
    if "alert.send_on_resolved" in flat:
        v = get("alert.send_on_resolved")
        if not isinstance(v, bool):
            raise ConfigProblem(file, at("alert.send_on_resolved"), "send_on_resolved must be true or false")
        kw["send_on_resolved"] = v
    rkey = "alert.reminder" if "alert.reminder" in flat else "alert.reminder_interval"
    if rkey in flat and get(rkey) is not None:
        try:
            kw["reminder"] = parse_duration(get(rkey))
        except ValueError as exc:
            raise ConfigProblem(file, at(rkey), f"reminder: {exc}") from None
        if kw["reminder"] <= 0:
            raise ConfigProblem(file, at(rkey), "reminder must be more than 0 (or leave it out)")
    if "maintenance" in flat:
        mw = get("maintenance")
        if not isinstance(mw, list):
            mw = [mw]
        lines = mw.item_lines if isinstance(mw, _LineList) else [at("maintenance")] * len(mw)
        kw["maintenance"] = tuple(_parse_window(w, file, ln) for w, ln in zip(mw, lines, strict=True))

    return Monitor(id=mid, type=mtype, targets=tuple(targets), schedule=schedule,
                   name=str(get("name", "") or ""), enabled=enabled, timeout=timeout,
                   file=file, line=line, **kw)


def parse_text(text: str, file: str) -> list[Monitor]:
    """Parse one file's text -> its monitors (ids unique within the file)."""
    try:
        doc = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigProblem(file, line, f"invalid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigProblem(file, None, f"invalid YAML: {exc}") from None
    if doc is None:
        return []
    if isinstance(doc, dict) and "heartbeat.monitors" in doc:
        # A heartbeat.yml with an inline list is accepted too.
        doc = doc["heartbeat.monitors"]
    elif isinstance(doc, dict) and isinstance(doc.get("heartbeat"), dict) and "monitors" in doc["heartbeat"]:
        doc = doc["heartbeat"]["monitors"]
    if isinstance(doc, dict):
        doc_list = _LineList([doc])
        doc_list.item_lines = [doc.line]
        doc = doc_list
    if not isinstance(doc, list):
        raise ConfigProblem(file, 1, "a monitor file must hold a YAML list of monitors",
                            "start each monitor with '- type: http'")
    out: list[Monitor] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(doc):
        m = parse_monitor(item, file, doc.item_lines[i] if isinstance(doc, _LineList) else 1)
        if m.id in seen:
            raise ConfigProblem(file, m.line, f"duplicate monitor id {m.id!r}; also at {file}:{seen[m.id]}",
                                "ids must be unique across all monitor files")
        seen[m.id] = m.line
        out.append(m)
    return out


def parse_file(path: Path, name: str | None = None) -> list[Monitor]:
    name = name or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigProblem(name, None, "not UTF-8 text") from None
    except OSError as exc:
        raise ConfigProblem(name, None, f"cannot read: {exc.strerror or exc}") from None
    return parse_text(text, name)


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


def load_dir(config_dir: Path) -> LoadResult:
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
            files[name] = parse_file(p, name)
        except ConfigProblem as exc:
            problems.append(exc)
    res = merge(files)
    res.problems[:0] = problems
    return res
