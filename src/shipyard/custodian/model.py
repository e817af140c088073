"""The user's files: policy files (c7n YAML plus our rules) and c7n-org's accounts file.

Policy files stay c7n's own format; shipyard only adds rules on top, checked here without c7n:
- every policy has `metadata.severity`, one of SEVERITIES;
- an action that changes resources needs `metadata.remediate: true` (NOTIFY_ONLY_ACTIONS are
  the only actions that do not count as a change);
- notify-only actions (NOTIFY_ONLY_ACTIONS) are refused on other policies: detection runs
  without actions, and shipyard sends its own notices, once per change;
- `post-finding` is refused: it tags the customer's resources, and shipyard sends Security Hub
  findings itself (keyed on policy name + ARN, no tags);
- only pull mode (the runner runs the policies; it does not deploy Lambda functions);
- policy names are unique across the bundle (the ledger is keyed on them).
Every problem names the file and line. c7n's own schema check runs after (c7n.validate).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shipyard.errors import InputError, did_you_mean
from shipyard.store import open_store

SEVERITIES = ("low", "medium", "high", "critical")
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}
# Actions that only tell someone; every other c7n action counts as changing the resource.
# They run only with a remediation (shipyard's own notices replace them elsewhere).
NOTIFY_ONLY_ACTIONS = frozenset({"notify", "webhook", "put-metric"})
POLICY_SUFFIXES = (".yml", ".yaml")
POLICY_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*(-[A-Za-z0-9]+)*$")


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}" + (f" (fix: {self.hint})" if self.hint else "")


@dataclass(frozen=True)
class PolicySpec:
    name: str
    resource: str
    severity: str
    remediate: bool
    actions: tuple[str, ...]
    file: str
    line: int
    data: dict[str, Any] = field(compare=False, hash=False, repr=False)

    @property
    def changes_resources(self) -> bool:
        return any(a not in NOTIFY_ONLY_ACTIONS for a in self.actions)


def action_type(action: Any) -> str:
    """c7n accepts `- stop` as well as `- type: stop`."""
    if isinstance(action, str):
        return action
    if isinstance(action, dict):
        return str(action.get("type", ""))
    return ""


def _line_of(node: yaml.Node | None, path: tuple[Any, ...]) -> int | None:
    """The 1-based line of the node at `path` (keys and list indexes), else of the deepest
    node found on the way."""
    best = node.start_mark.line + 1 if node is not None else None
    for step in path:
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if getattr(k, "value", None) == step), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
            nxt = node.value[step]
        else:
            nxt = None
        if nxt is None:
            break
        node = nxt
        best = node.start_mark.line + 1
    return best


class PolicyFile:
    """One YAML file of policies, with the line of every node kept for messages."""

    def __init__(self, text: str, name: str) -> None:
        self.name = name
        try:
            self.root = yaml.compose(text, Loader=yaml.SafeLoader)
            self.data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise InputError(f"{name}:{mark.line + 1 if mark else '?'}: not valid YAML "
                             f"({getattr(exc, 'problem', None) or type(exc).__name__})",
                             hint="fix the YAML syntax") from None

    def line(self, *path: Any) -> int | None:
        return _line_of(self.root, path)


def check_file(pf: PolicyFile) -> tuple[list[PolicySpec], list[Problem]]:
    """Our rules over one file: the policies it holds and the problems found (pure)."""
    specs: list[PolicySpec] = []
    problems: list[Problem] = []

    def bad(path: tuple[Any, ...], message: str, hint: str | None = None) -> None:
        problems.append(Problem(pf.name, pf.line(*path), message, hint))

    if not isinstance(pf.data, dict) or not isinstance(pf.data.get("policies"), list):
        bad((), "a policy file is a mapping with a `policies:` list", "start the file with `policies:`")
        return specs, problems
    for key in pf.data:
        if key not in ("policies", "vars"):
            bad((key,), f"unknown top-level key {key!r}", did_you_mean(str(key), ["policies", "vars"]))
    for i, p in enumerate(pf.data["policies"]):
        at = ("policies", i)
        if not isinstance(p, dict) or not isinstance(p.get("name"), str) or not p.get("resource"):
            bad(at, "each policy needs a `name` and a `resource`")
            continue
        name = p["name"]
        if not POLICY_NAME.match(name):
            bad(at + ("name",), f"policy name {name!r} must be letters and digits in dash-separated "
                "words, starting with a letter (c7n's rule; it names folders and ledger rows)")
            continue
        meta = p.get("metadata") if isinstance(p.get("metadata"), dict) else {}
        severity = meta.get("severity")
        if severity not in SEVERITIES:
            hint = (did_you_mean(str(severity), SEVERITIES) if severity else None) or \
                f"add `metadata: {{severity: medium}}` (one of {', '.join(SEVERITIES)})"
            bad(at + (("metadata", "severity") if severity else ()),
                f"policy {name}: metadata.severity must be one of {', '.join(SEVERITIES)}"
                + (f", not {severity!r}" if severity else ""), hint)
        remediate = meta.get("remediate", False)
        if not isinstance(remediate, bool):
            bad(at + ("metadata", "remediate"), f"policy {name}: metadata.remediate is true or false")
            remediate = False
        mode = p.get("mode")
        if isinstance(mode, dict) and mode.get("type", "pull") != "pull":
            bad(at + ("mode",), f"policy {name}: only pull mode runs under shipyard "
                f"(not {mode.get('type')!r})", "drop `mode:`; the runner schedules the policies")
        actions = p.get("actions") or []
        types: list[str] = []
        for j, a in enumerate(actions if isinstance(actions, list) else []):
            t = action_type(a)
            types.append(t)
            if t == "post-finding":
                bad(at + ("actions", j), f"policy {name}: post-finding tags the resources it "
                    "reports; shipyard sends Security Hub findings itself",
                    "drop the action and run with --security-hub")
            elif t in NOTIFY_ONLY_ACTIONS and not remediate:
                bad(at + ("actions", j), f"policy {name}: action {t!r} would repeat every run; "
                    "shipyard sends notices itself, only when a finding changes",
                    "drop the action (or keep it on a remediate: true policy, where it runs "
                    "with the remediation)")
            elif t not in NOTIFY_ONLY_ACTIONS and not remediate:
                bad(at + ("actions", j), f"policy {name}: action {t!r} changes resources, "
                    "so the policy needs metadata.remediate: true",
                    "add `remediate: true` under metadata, or drop the action")
        if severity in SEVERITIES:
            specs.append(PolicySpec(name, str(p["resource"]), severity, remediate, tuple(types),
                                    pf.name, pf.line(*at) or 1, p))
    return specs, problems


def duplicate_names(specs: list[PolicySpec]) -> list[Problem]:
    seen: dict[str, PolicySpec] = {}
    out = []
    for s in specs:
        if s.name in seen:
            first = seen[s.name]
            out.append(Problem(s.file, s.line, f"policy name {s.name!r} is used twice "
                               f"(first at {first.file}:{first.line})",
                               "names key the findings ledger: give each policy its own"))
        else:
            seen[s.name] = s
    return out


def policy_files(root: Path) -> list[Path]:
    """The policy files under `root`, in name order: regular *.yml/*.yaml files that stay
    inside it (symlinks and special files are refused, not followed)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root} is not a folder of policy files",
                         hint="pass the folder that holds the *.yml policies")
    found = []
    for p in sorted(root.rglob("*")):
        if p.name.startswith(".") or p.suffix not in POLICY_SUFFIXES:
            continue
        if p.is_symlink() or not p.is_file():
            raise InputError(f"{p}: not a regular file (symlinks and special files are refused)",
                             hint="replace it with the file itself")
        found.append(p)
    if not found:
        raise InputError(f"no policy files (*.yml, *.yaml) under {root}")
    return found


# c7n-org's accounts file (https://cloudcustodian.io/docs/tools/c7n-org.html), as a model so a
# typo is reported before any account is touched.
class Account(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_id: str = Field(pattern=r"^\d{12}$")
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    role: str | None = Field(default=None, pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+")
    regions: list[str] = Field(default_factory=list)
    external_id: str | None = None
    profile: str | None = None
    tags: list[str] = Field(default_factory=list)
    vars: dict[str, Any] = Field(default_factory=dict)
    display_name: str | None = None
    org_id: str | None = None
    email: str | None = None


class AccountsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    accounts: list[Account] = Field(min_length=1)


def load_accounts(path: Path | str) -> AccountsFile:
    """c7n-org's accounts file from a local path or s3://bucket/key, checked."""
    if str(path).startswith("s3://"):
        folder, _, key = str(path).rpartition("/")
        with open_store(folder).open(key) as f:
            text = f.read().decode("utf-8")
    elif Path(path).is_file():
        text = Path(path).read_text(encoding="utf-8")
    else:
        raise InputError(f"accounts file {path} not found", hint="see docs/custodian.md for the format")
    pf = PolicyFile(text, str(path))
    try:
        model = AccountsFile.model_validate(pf.data)
    except ValidationError as exc:
        e = exc.errors(include_url=False)[0]
        loc = tuple(e["loc"])
        hint = None
        if e["type"] == "extra_forbidden":
            hint = did_you_mean(str(loc[-1]), Account.model_fields) or \
                f"allowed keys: {', '.join(Account.model_fields)}"
        raise InputError(f"{path}:{pf.line(*loc)}: {'.'.join(map(str, loc))}: {e['msg']}",
                         hint=hint) from None
    names = [a.name for a in model.accounts]
    for i, a in enumerate(model.accounts):
        if not (a.role or a.profile):
            raise InputError(f"{path}:{pf.line('accounts', i)}: account {a.name} needs a `role` "
                             "(or a `profile`)", hint="c7n-org assumes that role in the account")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"{path}: account name(s) used twice: {', '.join(dupes)}")
    return model


def policy_json_schema() -> dict[str, Any]:
    """JSON Schema of the accounts file (c7n publishes the policy schema itself)."""
    return AccountsFile.model_json_schema()
