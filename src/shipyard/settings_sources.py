"""The settings sources that refuse undeclared keys (used by shipyard.settings).

- `CheckedEnv`: the environment; a `SHIPYARD_*` variable no field declares is a warning, once per
  process, with the closest declared name, and is otherwise ignored.
- `CheckedToml`: shipyard.toml; a key no field declares is a ConfigError naming the file, the key
  and the closest one.
- `unknown_keys(model, data)`: every key of nested data a model does not declare; `dict[str, X]`
  fields take any key (their values are checked against X), `Any` is free-form.
"""

from __future__ import annotations

import logging
import os
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_settings import BaseSettings, EnvSettingsSource, TomlConfigSettingsSource

from shipyard.errors import ConfigError, closest, did_you_mean

log = logging.getLogger("shipyard.settings")

# SHIPYARD_* variables that are not settings (read directly, or by the test suite).
OTHER_ENV = {"SHIPYARD_CONFIG", "SHIPYARD_LAMBDA_SECRET", "SHIPYARD_RELIABILITY",
             "SHIPYARD_RELIABILITY_SEED"}
OTHER_ENV_PREFIXES = ("SHIPYARD_TEST_",)


def _shape(ann: Any) -> tuple[str, Any]:
    """("model", cls) | ("dict", value type) | ("any", None) | ("leaf", None) for an annotation."""
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return "model", ann
    origin = typing.get_origin(ann)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        return _shape(args[0]) if len(args) == 1 else ("leaf", None)
    if origin is dict:
        return "dict", typing.get_args(ann)[1]
    if ann is Any:
        return "any", None
    return "leaf", None


def unknown_keys(ann: Any, data: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], list[str]]]:
    """Every key of nested `data` that `ann` does not declare: (path, the declared choices)."""
    kind, inner = _shape(ann)
    if not isinstance(data, dict) or kind == "any":
        return []
    if kind == "leaf":  # a plain value given sub-keys (SHIPYARD_OUTBOX__X): none of them exists
        return [(path + (str(key),), []) for key in data]
    out: list[tuple[tuple[str, ...], list[str]]] = []
    for key, value in data.items():
        if kind == "dict":
            out += unknown_keys(inner, value, path + (str(key),))
            continue
        fields = inner.model_fields
        names = {n: f for n, f in fields.items()}
        for n, f in fields.items():  # top-level aliases (SLACK_BOT_TOKEN)
            for alias in getattr(f.validation_alias, "choices", None) or []:
                names.setdefault(str(alias).lower(), f)
        field = names.get(str(key).lower() if issubclass(inner, BaseSettings) else str(key))
        if field is None:
            out.append((path + (str(key),), list(fields)))
        else:
            out += unknown_keys(field.annotation, value, path + (str(key),))
    return out


_warned_env: set[str] = set()


class CheckedEnv(EnvSettingsSource):
    """The environment source, minus the SHIPYARD_* variables no field declares (a warning each,
    with a did-you-mean, once per process; they are otherwise ignored)."""

    def __call__(self) -> dict[str, Any]:
        data = super().__call__()
        for path, choices in unknown_keys(self.settings_cls, data):
            parent = data
            for part in path[:-1]:
                parent = parent[part]
            parent.pop(path[-1], None)
            _warn_env("SHIPYARD_" + "__".join(path).upper(), path[:-1], path[-1], choices)
        for var in os.environ:  # names no field matches never reach `data`: check each one's path
            if not var.startswith("SHIPYARD_") or var in OTHER_ENV or var.startswith(OTHER_ENV_PREFIXES):
                continue
            parts = var[len("SHIPYARD_"):].lower().split("__")
            nested: dict[str, Any] = {}
            node = nested
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = ""
            for path, choices in unknown_keys(self.settings_cls, nested)[:1]:
                _warn_env(var, path[:-1], path[-1], choices)
        return data


def _warn_env(var: str, parent: tuple[str, ...], name: str, choices: list[str]) -> None:
    if var not in _warned_env:
        _warned_env.add(var)
        close = closest(name, choices)
        mean = f": did you mean SHIPYARD_{'__'.join((*parent, close)).upper()}?" if close else ""
        log.warning("unknown setting %s is ignored%s", var, mean)


class CheckedToml(TomlConfigSettingsSource):
    """shipyard.toml; a key no field declares is a ConfigError naming the file and the key."""

    def __init__(self, settings_cls: type[BaseSettings], toml_file: Path) -> None:
        self.file = toml_file
        try:
            super().__init__(settings_cls, toml_file=toml_file)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{toml_file}: not valid TOML ({exc})", hint="fix the file's syntax") from None

    def __call__(self) -> dict[str, Any]:
        data = super().__call__()
        bad = unknown_keys(self.settings_cls, data)
        if bad:
            path, choices = bad[0]
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            mean = did_you_mean(path[-1], choices)
            raise ConfigError(
                f"{self.file}: unknown key {'.'.join(path)!r}{more}" + (f": {mean}" if mean else ""),
                hint="the settings and their sections are listed in docs/configuration.md",
                file=str(self.file), key=".".join(path))
        return data


__all__ = ["CheckedEnv", "CheckedToml", "unknown_keys", "OTHER_ENV", "OTHER_ENV_PREFIXES"]
