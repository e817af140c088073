"""Secret references, resolved at deploy time into values that live only in memory.

    env:NAME                    photon's own environment (e.g. a CI secret)
    file:PATH                   a regular file (relative to the deployment file; no `..` out of
                                its folder; absolute paths allowed); trailing newline dropped
    ssm:/path/name              an SSM parameter (SecureString decrypted)
    secretsmanager:name#key     a Secrets Manager secret; `#key` picks a key of a JSON secret

Every error names the field and the reference, never a value: `config.secrets.API_KEY (env:X)
is not set` (no `API_KEY: ...`, which the redactor would mask as a key=value secret).
The AWS target does not resolve: it turns ssm:/secretsmanager: references into ARNs for the
task definition's `secrets` (aws/taskdef.py).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from shipyard import aws
from shipyard.errors import InputError, NotFoundError, ShipyardError

MAX_FILE = 64 * 1024


def parse(ref: str) -> tuple[str, str, str | None]:
    """`secretsmanager:db#password` -> ("secretsmanager", "db", "password")."""
    kind, _, rest = ref.partition(":")
    if kind == "secretsmanager" and "#" in rest:
        name, _, key = rest.partition("#")
        return kind, name, key
    return kind, rest, None


def _file(path: str, base: Path, field: str) -> str:
    p = Path(path)
    if not p.is_absolute():
        if ".." in p.parts:
            raise InputError(f"{field} (file:{path}) leaves the deployment file's folder",
                             hint="use a path below the file's folder, or an absolute path")
        p = base / p
    try:
        st = os.stat(p)
    except OSError:
        raise InputError(f"{field} (file:{path}) does not exist", field=field) from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{field} (file:{path}) is not a regular file", field=field)
    if st.st_size > MAX_FILE:
        raise InputError(f"{field} (file:{path}) is larger than {MAX_FILE} bytes", field=field)
    return p.read_text(encoding="utf-8").rstrip("\r\n")


def _aws(kind: str, name: str, key: str | None, field: str, region: str | None) -> str:
    try:
        if kind == "ssm":
            with aws.aws_errors(f"{field} (reading SSM parameter {name})"):
                return aws.client("ssm", region=region).get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        with aws.aws_errors(f"{field} (reading secret {name})"):
            value = aws.client("secretsmanager", region=region).get_secret_value(SecretId=name).get("SecretString")
    except NotFoundError:
        raise InputError(f"{field} ({kind}:{name}) does not exist", field=field,
                         hint="create it, or fix the reference") from None
    if value is None:
        raise InputError(f"{field} (secretsmanager:{name}) is binary; photon passes text secrets only")
    if key is None:
        return value
    try:
        doc = json.loads(value)
    except ValueError:
        raise InputError(f"{field} (secretsmanager:{name}) is not JSON, so #{key} cannot be read") from None
    if not isinstance(doc, dict) or key not in doc:
        raise InputError(f"{field} (secretsmanager:{name}) has no key {key!r}", field=field)
    return str(doc[key])


def resolve(refs: dict[str, str], base: Path, *, environ: dict[str, str] | None = None,
            region: str | None = None) -> dict[str, str]:
    """NAME -> value for every reference; the first that fails raises an InputError."""
    env = os.environ if environ is None else environ
    out: dict[str, str] = {}
    for name, ref in refs.items():
        field = f"config.secrets.{name}"
        kind, target, key = parse(ref)
        if kind == "env":
            if target not in env:
                raise InputError(f"{field} (env:{target}) is not set", field=field,
                                 hint=f"export {target} (in CI: from the secret store) before deploying")
            out[name] = env[target]
        elif kind == "file":
            out[name] = _file(target, base, field)
        elif kind in ("ssm", "secretsmanager"):
            try:
                out[name] = _aws(kind, target, key, field, region)
            except InputError:
                raise
            except ShipyardError as exc:
                raise type(exc)(exc.message, hint=exc.hint or "check AWS credentials and region") from None
        else:  # the model's pattern makes this unreachable for validated files
            raise InputError(f"{field} has an unknown reference kind {kind!r}")
    return out
