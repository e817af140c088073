"""Badges for READMEs, in the style of Gatus / shields.io "flat": a grey label on the left, a
coloured value on the right (https://github.com/TwiN/gatus#badges).

Pure functions: text in, SVG out. Widths are estimated from Verdana 11px character widths
(shields.io does the same with a measured table); nothing is fetched, nothing is scripted.
"""

from __future__ import annotations

from html import escape

GREEN, YELLOW, ORANGE, RED, GREY = "#40cc11", "#cccc11", "#c7801a", "#c7130a", "#9f9f9f"
STATUS_COLOURS = {"up": GREEN, "slow": ORANGE, "failing": YELLOW, "down": RED, "maintenance": "#2563eb",
                  "pending": GREY}
_NARROW, _WIDE = set("fijlrtI1.,:;!|' "), set("mwMW%@")


def _width(text: str) -> int:
    return int(sum(3.5 if c in _NARROW else 10.5 if c in _WIDE else 7.0 for c in text)) + 10


def badge(label: str, value: str, colour: str) -> str:
    lw, vw = _width(label), _width(value)
    w = lw + vw
    lab, val = escape(label), escape(value)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="20" role="img" aria-label="{lab}: {val}">'
            f'<title>{lab}: {val}</title>'
            f'<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/>'
            f'<stop offset="1" stop-opacity=".1"/></linearGradient>'
            f'<clipPath id="r"><rect width="{w}" height="20" rx="3" fill="#fff"/></clipPath>'
            f'<g clip-path="url(#r)"><rect width="{lw}" height="20" fill="#555"/>'
            f'<rect class="value" x="{lw}" width="{vw}" height="20" fill="{colour}"/>'
            f'<rect width="{w}" height="20" fill="url(#s)"/></g>'
            f'<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">'
            f'<text x="{lw / 2}" y="14" class="label">{lab}</text>'
            f'<text x="{lw + vw / 2}" y="14" class="value">{val}</text></g></svg>')


def status_badge(status: str) -> str:
    return badge("status", status, STATUS_COLOURS.get(status, GREY))


def uptime_badge(window: str, ratio: float | None) -> str:
    if ratio is None:
        return badge(f"uptime {window}", "no data", GREY)
    pct = ratio * 100
    colour = GREEN if pct >= 99.9 else YELLOW if pct >= 99 else ORANGE if pct >= 95 else RED
    return badge(f"uptime {window}", f"{pct:.2f}%", colour)


def response_time_badge(ms: float | None) -> str:
    if ms is None:
        return badge("response time", "no data", GREY)
    colour = GREEN if ms < 300 else YELLOW if ms < 600 else ORANGE if ms < 1000 else RED
    return badge("response time", f"{ms:.0f} ms", colour)
