import pytest

from shipyard.redact import MASK, redact, redact_obj


@pytest.mark.parametrize(
    "text, secret",
    [
        ("postgresql://loader:s3cr3t@db:5432/x", "s3cr3t"),
        ("mysql://root:p%40ss@127.0.0.1:3306/test failed", "p%40ss"),
        ("connection failed: host=db user=u password=hunter22 dbname=x", "hunter22"),
        ("password='quoted secret' host=h", "quoted"),
        ("token xoxb-123-456-abcdef rejected", "xoxb-123-456-abcdef"),
        ("Authorization: Bearer abc.def-ghi", "abc.def-ghi"),
        ("key AKIAABCDEFGHIJKLMNOP used", "AKIAABCDEFGHIJKLMNOP"),
        ("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG", "wJalrXUtnFEMI/K7MDENG"),
    ],
)
def test_secrets_are_masked(text, secret):
    out = redact(text)
    assert secret not in out
    assert MASK in out


def test_plain_text_untouched():
    s = "loaded 5 rows into analytics.users from destination=postgres/database=a/table_name=b"
    assert redact(s) == s
    assert redact("postgresql://loader@db:5432/x") == "postgresql://loader@db:5432/x"


def test_extra_secrets_and_nested():
    report = {"error": "auth failed for topsecretvalue", "where": ["x", "topsecretvalue"], "n": 3}
    out = redact_obj(report, ["topsecretvalue"])
    assert "topsecretvalue" not in str(out)
    assert out["n"] == 3
