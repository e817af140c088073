"""The deployment file: one JSON document per service, validated before anything starts.

`load(path)` reads it, expands `${...}` (variables.py), merges the `environments.<env>` block
over the base, validates with `extra="forbid"` and turns pydantic's errors into one InputError
that names the field (with a did-you-mean for a misspelt key). `schema()` is what
`shipyard photon schema` prints; a file's `"$schema"` may point at it for editor completion.
The `aws` block's model lives in aws_model.py (part 2) and is only referenced here.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, ValidationError, WithJsonSchema,
                      model_validator)

from shipyard.errors import InputError, did_you_mean
from shipyard.photon.aws_model import AwsBlock
from shipyard.photon.variables import expand

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
NAME = r"^[a-z][a-z0-9-]{0,39}$"
URL_PATH = r"^/[A-Za-z0-9._~%/?=&+-]{0,200}$"
SECRET_REF = r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+|ssm:/.+|secretsmanager:[^#]+(#.+)?)$"


def parse_duration(v: Any) -> float:
    """`"30s"`, `"2m"`, `"500ms"`, `"1h"` or a number of seconds -> seconds."""
    if isinstance(v, bool):
        raise ValueError("a duration is a string like '30s', '2m', '500ms' or a number of seconds")
    if isinstance(v, (int, float)):
        if v < 0:
            raise ValueError("a duration cannot be negative")
        return float(v)
    m = _DURATION.match(str(v))
    if not m:
        raise ValueError(f"{v!r} is not a duration: write '30s', '2m', '500ms' or '1h'")
    return float(m.group(1)) * _UNITS[m.group(2)]


Duration = Annotated[float, BeforeValidator(parse_duration),
                     WithJsonSchema({"anyOf": [{"type": "string", "pattern": _DURATION.pattern},
                                               {"type": "number", "minimum": 0}]})]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Health(_Model):
    # No spaces, quotes or shell characters: the path goes into haproxy.cfg and a CMD-SHELL check.
    path: str = Field("/health", pattern=URL_PATH, description="GET this path; 2xx/3xx is healthy.")
    interval: Duration = Field(1.0, description="Time between checks while waiting.")
    timeout: Duration = Field(2.0, description="One check's timeout.")
    start_timeout: Duration = Field(60.0, description="How long a new release may take to turn healthy.")


class Container(_Model):
    port: int = Field(8080, ge=1, le=65535, description="The port the app listens on.")
    health: Health = Field(default_factory=Health)


class Local(_Model):
    command: list[str] | None = Field(None, min_length=1, description="Run this when no Docker daemon answers; "
                                      "${PORT} is the port it must listen on.")
    cwd: str | None = Field(None, description="Folder for command (relative to the file).")
    runtime: Literal["auto", "process", "docker"] = "auto"
    port: int | None = Field(None, ge=1, le=65535, description="The stable endpoint's port (default: a free one, kept).")


class Config(_Model):
    vars: dict[str, str] = Field(default_factory=dict, description="Plain environment variables.")
    secrets: dict[str, Annotated[str, Field(pattern=SECRET_REF)]] = Field(
        default_factory=dict,
        description="NAME -> env:VAR | file:PATH | ssm:/param | secretsmanager:name#json-key; resolved at deploy time.")

    @model_validator(mode="after")
    def _names(self) -> "Config":
        for name in [*self.vars, *self.secrets]:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
                raise ValueError(f"{name!r} is not an environment variable name")
        both = set(self.vars) & set(self.secrets)
        if both:
            raise ValueError(f"{sorted(both)} are both vars and secrets; keep one")
        return self


class Firelens(_Model):
    image: str = "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable"
    options: dict[str, str] = Field(default_factory=dict, description="awsfirelens logConfiguration options.")


class Logging(_Model):
    retention_days: int = Field(14, ge=1, le=3653)
    keep_log_group: bool = Field(False, description="AWS: keep the log group on terminate.")
    firelens: Firelens | None = None


class Tracing(_Model):
    enabled: bool = True
    otlp_endpoint: str | None = Field(None, description="OTEL_EXPORTER_OTLP_ENDPOINT (default: settings).")


class AllAtOnce(_Model):
    type: Literal["all_at_once"]


class BlueGreen(_Model):
    type: Literal["blue_green"]


class Canary(_Model):
    type: Literal["canary"]
    percent: int = Field(10, ge=1, le=99)
    bake: Duration = 30.0


class Linear(_Model):
    type: Literal["linear"]
    step_percent: int = Field(25, ge=1, le=100)
    step_bake: Duration = 30.0


Strategy = Annotated[Union[AllAtOnce, BlueGreen, Canary, Linear], Field(discriminator="type")]


class Smoke(_Model):
    path: str = Field("/", pattern=URL_PATH)
    expect_status: int = Field(200, ge=100, le=599)


class Gates(_Model):
    health: bool = True
    max_error_rate: float | None = Field(0.05, ge=0, le=1, description="5xx share above which a release is rolled back.")
    window: Duration = Field(30.0, description="The error rate is measured over this much recent time.")
    min_requests: int = Field(20, ge=1, description="Below this many requests in the window the rate is not judged.")
    smoke: Smoke | None = None
    alarms: list[str] = Field(default_factory=list, description="AWS: CloudWatch alarm names that fail the release.")


class Deploy(_Model):
    strategy: Strategy = Field(default_factory=lambda: BlueGreen(type="blue_green"))
    bake: Duration = Field(0.0, description="Watch the gates this long at 100% before the old release stops.")
    gates: Gates = Field(default_factory=Gates)
    rollback: bool = Field(True, description="Roll back automatically when a gate fails.")
    driver: Literal["orchestrated", "native"] = Field("orchestrated", description="AWS: who shifts traffic.")


class Deployment(_Model):
    schema_ref: str | None = Field(None, alias="$schema")
    service: str = Field(..., pattern=NAME)
    env: str = Field(..., pattern=NAME, description="Environment name, e.g. ${BRANCH}, staging, prod.")
    target: Literal["local", "aws"] = "local"
    image: str | None = None
    version: str | None = Field(None, description="Shown in status and OTEL (default: the image tag or GIT_SHA).")
    container: Container = Field(default_factory=Container)
    local: Local = Field(default_factory=Local)
    config: Config = Field(default_factory=Config)
    logging: Logging = Field(default_factory=Logging)
    tracing: Tracing = Field(default_factory=Tracing)
    deploy: Deploy = Field(default_factory=Deploy)
    aws: AwsBlock | None = None
    environments: dict[str, dict[str, Any]] = Field(default_factory=dict,
                                                    description="env name -> fields that override the base.")
    # The file's folder: relative local.cwd and file: secrets are read from here.
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)

    @model_validator(mode="after")
    def _runnable(self) -> "Deployment":
        if self.target == "local" and not self.image and not self.local.command:
            raise ValueError("set image (run in Docker) or local.command (run as a process)")
        if self.target == "aws" and (not self.image or self.aws is None):
            raise ValueError("target aws needs image and an aws block")
        return self

    @property
    def base_dir(self) -> Path:
        return self._base_dir

    def located(self, base_dir: Path) -> "Deployment":
        """This deployment, reading relative paths (local.cwd, file: secrets) from `base_dir`."""
        self._base_dir = base_dir
        return self

    @property
    def release_version(self) -> str:
        if self.version:
            return self.version
        if self.image and ":" in self.image.rsplit("/", 1)[-1]:
            return self.image.rsplit(":", 1)[1]
        return "unversioned"

    def spec(self) -> dict[str, Any]:
        """What makes a release: the fields whose change starts a new one (no secret values)."""
        return self.model_dump(mode="json", include={"image", "version", "container", "local", "config",
                                                     "logging", "tracing", "aws"}, exclude_none=True)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Deep merge; a dict naming another `type` (a strategy) replaces the base's whole."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        old = out.get(k)
        same_kind = isinstance(old, dict) and isinstance(v, dict) and v.get("type", old.get("type")) == old.get("type")
        out[k] = _merge(old, v) if same_kind else copy.deepcopy(v)  # type: ignore[arg-type]
    return out


def _models_in(ann: Any) -> list[type[BaseModel]]:
    """The models inside an annotation (X, X | None, Annotated[Union[A, B], ...], dict[str, X])."""
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return [ann]
    return [m for a in get_args(ann) for m in _models_in(a)]


def _fields_of(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names allowed at `loc` (for did-you-mean); a union offers all its members' fields."""
    models: list[type[BaseModel]] = [model]
    for part in loc:
        if isinstance(part, int):
            continue
        models = [m for mod in models if part in mod.model_fields
                  for m in _models_in(mod.model_fields[part].annotation)]
    return sorted({f.alias or n for m in models for n, f in m.model_fields.items()})


def _as_input_error(exc: ValidationError, source: str, prefix: str = "") -> InputError:
    first = exc.errors()[0]
    loc = tuple(p for p in first["loc"] if not (isinstance(p, str) and p in {"all_at_once", "blue_green", "canary", "linear"}))
    where = prefix + ".".join(str(p) for p in loc) if loc else (prefix.rstrip(".") or "(file)")
    hint = None
    if first["type"] == "extra_forbidden" and isinstance(loc[-1], str):
        hint = did_you_mean(loc[-1], _fields_of(Deployment, loc[:-1]))
        msg = f"{source}: {where}: unknown field"
    else:
        msg = f"{source}: {where}: {first['msg'].removeprefix('Value error, ')}"
    more = len(exc.errors()) - 1
    if more:
        msg += f" (and {more} more problem{'s' if more > 1 else ''})"
    return InputError(msg, hint=hint or "see `shipyard photon schema` for the file format", field=where)


def validate(data: dict[str, Any], source: str = "deployment") -> Deployment:
    """Validate a parsed (already expanded) file, with its `environments` override applied."""
    try:
        base = Deployment.model_validate(data)
    except ValidationError as exc:
        raise _as_input_error(exc, source) from None
    for name, over in base.environments.items():
        if not isinstance(over, dict) or {"service", "env", "environments"} & set(over):
            raise InputError(f"{source}: environments.{name}: may override anything but service, env and environments")
        try:
            Deployment.model_validate(_merge(data, {**over, "environments": {}}))
        except ValidationError as exc:
            raise _as_input_error(exc, source, f"environments.{name}.") from None
    if base.env in base.environments:
        return Deployment.model_validate(_merge(data, base.environments[base.env]))
    return base


def _read(p: Path) -> dict[str, Any]:
    if not p.is_file():
        raise InputError(f"{p}: no such deployment file", hint="pass the path of your deployment.json with -f")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f" at line {exc.lineno}, column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise InputError(f"{p}: not valid JSON{where}", hint="fix the JSON syntax") from None
    if not isinstance(data, dict):
        raise InputError(f"{p}: the file must hold one JSON object")
    return data


def load(path: str | Path, *, environ: dict[str, str] | None = None) -> Deployment:
    """Read, expand, merge and validate a deployment file."""
    p = Path(path)
    data = _read(p)
    dep = validate(expand(data, p.resolve().parent, environ), str(p))
    return dep.located(p.resolve().parent)


class Names(_Model):
    service: str = Field(..., pattern=NAME)
    env: str = Field(..., pattern=NAME)


def load_names(path: str | Path, *, environ: dict[str, str] | None = None) -> tuple[str, str]:
    """Only (service, env) of a file: what status, logs, promote, rollback and terminate need,
    so a variable used elsewhere (GIT_SHA in the image) need not be set to terminate."""
    p = Path(path)
    data = _read(p)
    picked = expand({k: data.get(k) for k in ("service", "env")}, p.resolve().parent, environ)
    try:
        names = Names.model_validate(picked)
    except ValidationError as exc:
        raise _as_input_error(exc, str(p)) from None
    return names.service, names.env


def schema() -> dict[str, Any]:
    """The JSON Schema of the deployment file."""
    out = Deployment.model_json_schema(by_alias=True)
    out["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    out["title"] = "photon deployment file"
    return out
