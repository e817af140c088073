"""Parsers for the parts of a monitor: maintenance windows, JSON conditions, TLS, alerting.

Each takes the raw value, the file and the line, and returns model data or raises
ConfigProblem naming the file and the line.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shipyard.pulse.model import ConfigProblem, JsonCheck, MaintenanceWindow, TlsOptions
from shipyard.pulse.patterns import Pattern, PatternError
from shipyard.pulse.schedule import parse_duration
from shipyard.pulse.yamlfile import LineDict, LineList

_DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_JSON_OPS = ("equals", "contains", "regexp", "has_fields", "range")
_RANGE_OPS = {"lt", "lte", "gt", "gte"}
# Keys whose value is a mapping kept whole (not flattened into dotted keys).
_LEAF_MAPPINGS = {"check.request.headers", "check.request.body", "check.response.headers", "fields",
                  "proxy_headers", "slow_threshold"}
VERIFICATION_MODES = ("none", "certificate", "full", "strict")
PROTOCOLS = ("TLSv1.2", "TLSv1.3")


def str_list(v: Any) -> list[str] | None:
    if isinstance(v, str):
        return [v]
    if isinstance(v, list) and all(isinstance(x, (str, int)) for x in v):
        return [str(x) for x in v]
    return None


def pattern(text: str, file: str, line: int) -> Pattern:
    try:
        return Pattern(text)
    except PatternError as exc:
        raise ConfigProblem(file, line, f"bad regex {text!r}: {exc}") from None


def duration(v: Any, file: str, line: int, what: str, *, positive: bool = True) -> float:
    try:
        d = parse_duration(v)
    except ValueError as exc:
        raise ConfigProblem(file, line, f"{what}: {exc}") from None
    if positive and d <= 0:
        raise ConfigProblem(file, line, f"{what} must be more than 0")
    return d


def whole(v: Any, file: str, line: int, what: str, lo: int = 0) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < lo:
        raise ConfigProblem(file, line, f"{what} must be a whole number >= {lo}")
    return v


def boolean(v: Any, file: str, line: int, what: str) -> bool:
    if not isinstance(v, bool):
        raise ConfigProblem(file, line, f"{what} must be true or false")
    return v


def pairs(v: Any, file: str, line: int, key: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(v, dict):
        raise ConfigProblem(file, line, f"{key} must be a mapping of header -> value")
    return tuple((str(k), str(x)) for k, x in v.items())


def _iso(v: Any) -> float:
    dt = v if isinstance(v, datetime) else datetime.fromisoformat(str(v).replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def window(v: Any, file: str, line: int) -> MaintenanceWindow:
    if not isinstance(v, dict):
        raise ConfigProblem(file, line, "a maintenance window must be a mapping",
                            "write {start: '23:00', duration: 1h} or {from: <ISO time>, to: <ISO time>}")
    line = getattr(v, "line", line)
    keys = set(v)
    if "from" in keys or "to" in keys:
        if keys - {"from", "to"} or not {"from", "to"} <= keys:
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
    d = duration(v.get("duration"), file, line, "maintenance duration")
    if d > 86400:
        raise ConfigProblem(file, line, "maintenance duration must be more than 0 and at most 24h")
    days = frozenset(range(7))
    if "every" in v:
        names = str_list(v["every"])
        if not names:
            raise ConfigProblem(file, line, "maintenance 'every' must be a list of weekdays")
        bad = [n for n in names if n.lower() not in _DAYS]
        if bad:
            raise ConfigProblem(file, line, f"maintenance 'every': {bad[0]!r} is not a weekday", "use Monday .. Sunday")
        days = frozenset(_DAYS.index(n.lower()) for n in names)
    tz = str(v.get("timezone", "UTC"))
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigProblem(file, line, f"unknown timezone {tz!r}", "use an IANA name such as Europe/Berlin") from None
    return MaintenanceWindow(start_minute=int(m.group(1)) * 60 + int(m.group(2)), duration=d, days=days, tz=tz)


def json_checks(v: Any, file: str, line: int) -> tuple[JsonCheck, ...]:
    """Heartbeat's `check.response.json`: [{description, condition: {op: {path: value}}}]."""
    if not isinstance(v, list):
        raise ConfigProblem(file, line, "check.response.json must be a list of {description, condition}")
    out = []
    for i, item in enumerate(v):
        iline = v.item_lines[i] if isinstance(v, LineList) else line
        if isinstance(item, dict) and "expression" in item:
            raise ConfigProblem(file, iline, "check.response.json 'expression' (CEL) is not supported",
                                "write a condition: {equals|contains|regexp|has_fields|range: ...}")
        if not isinstance(item, dict) or "condition" not in item:
            raise ConfigProblem(file, iline, "each check.response.json item needs a 'condition'",
                                "e.g. {description: healthy, condition: {equals: {status: ok}}}")
        cond = item["condition"]
        if not isinstance(cond, dict) or len(cond) != 1:
            raise ConfigProblem(file, iline, "a json condition has exactly one operator",
                                f"use one of {', '.join(_JSON_OPS)}")
        op, arg = next(iter(cond.items()))
        if op not in _JSON_OPS:
            raise ConfigProblem(file, iline, f"json condition {op!r} is not supported",
                                f"use one of {', '.join(_JSON_OPS)}")
        desc = str(item.get("description", op))
        if op == "has_fields":
            names = str_list(arg)
            if not names:
                raise ConfigProblem(file, iline, "has_fields takes a list of field paths")
            out += [JsonCheck(desc, "has_fields", n, None) for n in names]
            continue
        if not isinstance(arg, dict) or not arg:
            raise ConfigProblem(file, iline, f"{op} takes a mapping of field -> value")
        for path, value in arg.items():
            if op == "regexp":
                out.append(JsonCheck(desc, op, str(path), str(value), pattern(str(value), file, iline)))
            elif op == "range":
                if not isinstance(value, dict) or not value or set(value) - _RANGE_OPS or not all(
                        isinstance(x, (int, float)) and not isinstance(x, bool) for x in value.values()):
                    raise ConfigProblem(file, iline, f"range on {path!r} takes numbers under lt, lte, gt, gte")
                out.append(JsonCheck(desc, op, str(path), tuple(sorted(value.items()))))
            else:
                out.append(JsonCheck(desc, op, str(path), value))
    return tuple(out)


def _pem(v: Any, file: str, line: int, what: str) -> str:
    if not isinstance(v, str) or not v.strip():
        raise ConfigProblem(file, line, f"{what} must be a file path or an inline PEM block")
    return v


def tls(get: Callable[[str, Any], Any], has: Callable[[str], bool], at: Callable[[str], int],
        file: str) -> TlsOptions:
    kw: dict[str, Any] = {}
    if has("ssl.verification_mode"):
        mode = str(get("ssl.verification_mode", "")).lower()
        if mode not in VERIFICATION_MODES:
            raise ConfigProblem(file, at("ssl.verification_mode"), f"ssl.verification_mode {mode!r} is not valid",
                                f"use one of {', '.join(VERIFICATION_MODES)}")
        kw["verification_mode"] = mode
    if has("ssl.certificate_authorities"):
        cas = str_list(get("ssl.certificate_authorities", None))
        if not cas:
            raise ConfigProblem(file, at("ssl.certificate_authorities"),
                                "ssl.certificate_authorities must be a list of PEM files or PEM blocks")
        kw["certificate_authorities"] = tuple(cas)
    for key in ("certificate", "key"):
        if has(f"ssl.{key}"):
            kw[key] = _pem(get(f"ssl.{key}", None), file, at(f"ssl.{key}"), f"ssl.{key}")
    if has("ssl.certificate") != has("ssl.key"):
        k = "ssl.certificate" if has("ssl.certificate") else "ssl.key"
        raise ConfigProblem(file, at(k), "a client certificate needs both ssl.certificate and ssl.key")
    if has("ssl.key_passphrase"):
        kw["key_passphrase"] = str(get("ssl.key_passphrase", ""))
    if has("ssl.supported_protocols"):
        protos = str_list(get("ssl.supported_protocols", None)) or []
        bad = [p for p in protos if p not in PROTOCOLS]
        if bad or not protos:
            raise ConfigProblem(file, at("ssl.supported_protocols"),
                                f"ssl.supported_protocols: {bad[0] if bad else 'empty'!r} is not supported",
                                f"use {' and/or '.join(PROTOCOLS)} (older TLS versions are disabled here)")
        kw["supported_protocols"] = tuple(protos)
    return TlsOptions(**kw)


def slow(v: Any, file: str, line: int) -> dict[str, Any]:
    """`slow_threshold: 800ms`, or `{threshold: 800ms, checks: 5, stat: mean|p95}`."""
    spec = v if isinstance(v, dict) else {"threshold": v}
    extra = set(spec) - {"threshold", "checks", "stat"}
    if extra or "threshold" not in spec:
        raise ConfigProblem(file, line, f"slow_threshold takes threshold, checks, stat"
                                        f"{'; unknown: ' + ', '.join(sorted(extra)) if extra else ''}",
                            "e.g. slow_threshold: 800ms, or {threshold: 800ms, checks: 5, stat: p95}")
    out: dict[str, Any] = {"slow_threshold_ms": duration(spec["threshold"], file, line, "slow_threshold") * 1000}
    if "checks" in spec:
        out["slow_window"] = whole(spec["checks"], file, line, "slow_threshold checks", 1)
    stat = str(spec.get("stat", "mean"))
    if stat != "mean" and not re.fullmatch(r"p([1-9][0-9]?)", stat):
        raise ConfigProblem(file, line, f"slow_threshold stat {stat!r} is not valid", "use mean, or p50 .. p99")
    out["slow_stat"] = stat
    return out


def alerting(get: Callable[[str, Any], Any], has: Callable[[str], bool], at: Callable[[str], int],
             file: str) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    for key, attr in (("alert.failure_threshold", "failure_threshold"),
                      ("alert.success_threshold", "success_threshold")):
        if has(key):
            kw[attr] = whole(get(key, None), file, at(key), key.split(".")[1], 1)
    if has("alert.channel"):
        ch = get("alert.channel", None)
        if not isinstance(ch, str) or not ch.strip():
            raise ConfigProblem(file, at("alert.channel"), "alert.channel must be a channel name")
        kw["channel"] = ch.strip().lstrip("#")
    if has("alert.send_on_resolved"):
        kw["send_on_resolved"] = boolean(get("alert.send_on_resolved", None), file, at("alert.send_on_resolved"),
                                         "send_on_resolved")
    rkey = "alert.reminder" if has("alert.reminder") else "alert.reminder_interval"
    if has(rkey) and get(rkey, None) is not None:
        kw["reminder"] = duration(get(rkey, None), file, at(rkey), "reminder")
    if has("slow_threshold"):
        kw.update(slow(get("slow_threshold", None), file, at("slow_threshold")))
    if has("cert_expiry_warn_days"):
        days = get("cert_expiry_warn_days", None)
        days = [days] if isinstance(days, int) else days
        if not isinstance(days, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0
                                                 for d in days):
            raise ConfigProblem(file, at("cert_expiry_warn_days"), "cert_expiry_warn_days must be a list of days",
                                "e.g. cert_expiry_warn_days: [30, 7]; [] turns the warnings off")
        kw["cert_warn_days"] = tuple(sorted(set(days), reverse=True))
    if has("maintenance"):
        mw = get("maintenance", None)
        if not isinstance(mw, list):
            mw = [mw]
        lines = mw.item_lines if isinstance(mw, LineList) else [at("maintenance")] * len(mw)
        kw["maintenance"] = tuple(window(w, file, ln) for w, ln in zip(mw, lines, strict=True))
    return kw


def _flatten(d: LineDict, prefix: str, out: dict[str, tuple[Any, int]], base_line: int) -> None:
    for k, v in d.items():
        key = f"{prefix}{k}"
        if key.startswith("alert."):
            key = key.replace("-", "_")
        line = getattr(d, "key_lines", {}).get(k, base_line)
        if isinstance(v, dict) and key not in _LEAF_MAPPINGS:
            _flatten(v, key + ".", out, line)
        else:
            out[key] = (v, line)


class Fields:
    """One monitor's flattened keys, with the line of each."""

    def __init__(self, item: LineDict, file: str, line: int) -> None:
        self.flat: dict[str, tuple[Any, int]] = {}
        self.file, self.line = file, line
        _flatten(item, "", self.flat, line)

    def get(self, key: str, default: Any = None) -> Any:
        return self.flat[key][0] if key in self.flat else default

    def has(self, key: str) -> bool:
        return key in self.flat

    def at(self, key: str) -> int:
        return self.flat[key][1] if key in self.flat else self.line

    def problem(self, key: str | None, message: str, hint: str | None = None) -> ConfigProblem:
        return ConfigProblem(self.file, self.at(key) if key else self.line, message, hint)
