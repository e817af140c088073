"""Monitor YAML with line numbers, bounded alias expansion and Heartbeat's `${VAR}` expansion.

- Every mapping and list remembers its line, and the line of each key / item, so every error
  names file:line.
- Aliases are bounded: a few hundred bytes of nested anchors (`a: &a [*b, *b, ...]`) expand to
  hundreds of megabytes once flattened. The document's size *after* expansion is counted on the
  node graph (each node once, memoised) before anything is built; past `max_nodes` the file is
  refused.
- `${VAR}` and `${VAR:default}` in string values are replaced from the environment, as
  Heartbeat does (https://www.elastic.co/guide/en/beats/libbeat/current/config-file-format-env-vars.html);
  `$${` is a literal `${`. A value that came from a variable whose name says it is a secret
  (PASSWORD, TOKEN, SECRET, KEY, AUTH, CREDENTIAL, PASS) is remembered as a secret.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import yaml

_VAR = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}")
_SECRET_NAME = re.compile(r"PASS|SECRET|TOKEN|KEY|AUTH|CREDENTIAL|PRIVATE", re.IGNORECASE)


class LineDict(dict):
    line: int = 0
    key_lines: dict[str, int]


class LineList(list):
    line: int = 0
    item_lines: list[int]


class YamlProblem(Exception):
    def __init__(self, line: int | None, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.line, self.message, self.hint = line, message, hint


@dataclass
class Expansion:
    env: Mapping[str, str]
    secrets: list[str] = field(default_factory=list)


# libyaml's parser when PyYAML was built with it (5-10x faster on a thousand monitors); it
# reports the same marks (line numbers) as the pure-Python one.
class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    expansion: Expansion


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    out = LineDict()
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


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    out = LineList(loader.construct_object(n, deep=True) for n in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [n.start_mark.line + 1 for n in node.value]
    return out


def _construct_str(loader: _Loader, node: yaml.ScalarNode) -> str:
    text = loader.construct_scalar(node)
    if "$" not in text:
        return text
    exp = loader.expansion

    def sub(m: re.Match) -> str:
        if m.group(0) == "$${":
            return "${"
        name, default = m.group(1), m.group(2)
        value = exp.env.get(name)
        if value is None:
            if default is None:
                raise YamlProblem(node.start_mark.line + 1, f"environment variable {name} is not set",
                                  f"set {name}, or give a default: ${{{name}:value}}")
            value = default
        if _SECRET_NAME.search(name) and value:
            exp.secrets.append(value)
        return value

    return _VAR.sub(sub, text)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)
_Loader.add_constructor("tag:yaml.org,2002:str", _construct_str)


def _expanded_size(root: yaml.Node, limit: int) -> int:
    """Nodes the document has once every alias is expanded (stops counting past `limit`)."""
    memo: dict[int, int] = {}

    def size(n: yaml.Node) -> int:
        got = memo.get(id(n))
        if got is not None:
            return got
        memo[id(n)] = limit + 1  # a cycle (recursive alias) counts as too big
        if isinstance(n, yaml.MappingNode):
            total = 1 + sum(size(k) + size(v) for k, v in n.value)
        elif isinstance(n, yaml.SequenceNode):
            total = 1 + sum(size(v) for v in n.value)
        else:
            total = 1
        total = min(total, limit + 1)
        memo[id(n)] = total
        return total

    return size(root)


def load_yaml(text: str, *, max_nodes: int, env: Mapping[str, str] | None = None) -> tuple[Any, list[str]]:
    """The document (LineDict / LineList / scalars) and the secret values expanded into it.
    Raises YamlProblem with the line."""
    loader = _Loader(text)
    loader.expansion = Expansion(os.environ if env is None else env)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, []
        n = _expanded_size(node, max_nodes)
        if n > max_nodes:
            raise YamlProblem(None, f"the document expands to more than {max_nodes:,} YAML nodes "
                                    "(aliases / anchors)",
                              "write the monitors out, or raise pulse.max_yaml_nodes")
        return loader.construct_document(node), loader.expansion.secrets
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise YamlProblem(mark.line + 1 if mark else None, f"invalid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise YamlProblem(None, f"invalid YAML: {exc}") from None
    except RecursionError:
        raise YamlProblem(None, "invalid YAML: nested too deeply") from None
    finally:
        loader.dispose()
