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


# -- awkward passwords: a raw '@', spaces, '%', quotes, non-ASCII ------------------------------

AWKWARD = ["p@ss word", "pa%ss", "it's \"quoted\"", "héllo wörld", "a@b@c d%e'f\"gé", "x y z@@"]


@pytest.mark.parametrize("password", AWKWARD)
def test_urls_with_awkward_passwords_are_masked_whole(password):
    for text in (f"could not connect to postgresql://loader:{password}@db.internal:5432/x today",
                 f'connect("mysql://root:{password}@127.0.0.1/test")'):
        out = redact(text)
        pieces = [p for p in password.replace("@", " ").replace("%", " ").replace("'", " ").replace('"', " ").split()
                  if len(p) >= 2]
        assert not [p for p in pieces if p in out.replace("loader", "").replace("root", "")], out
        assert "db.internal" in out or "127.0.0.1" in out  # the host is still said


@pytest.mark.parametrize("text, kept", [
    ("postgresql://db.internal:5432/x refused; mail ops@example.com", "5432/x refused; mail ops@example.com"),
    ("http://host:8080/path@v2 ok", "host:8080/path@v2 ok"),
])
def test_ports_are_not_passwords(text, kept):
    assert kept in redact(text)


@pytest.mark.parametrize("text, secret", [
    ("password='p@ss wrd9' host=h", "wrd9"),
    ('password="it\\"s secret" host=h', "secret"),
    ("host=h password=hunter22;user=u", "hunter22"),
])
def test_quoted_key_value_passwords_are_masked_to_the_closing_quote(text, secret):
    out = redact(text)
    assert secret not in out and ("host=h" in out or "user=u" in out)


def test_known_secrets_are_masked_even_in_fragments_without_a_url(monkeypatch):
    from shipyard.settings import get_settings

    monkeypatch.setenv("SHIPYARD_DESTINATIONS__PG__URL", "postgresql://u:Alpha1@Bravo2 Charlie3%'é@h/db")
    get_settings(fresh=True)
    # What psycopg prints for that URL: the part after the first '@', cut at its own places.
    out = redact('unexpected spaces found in "Bravo2 Charlie3%\'é@h", use %20')
    assert "Bravo2" not in out and "Charlie3" not in out and "use %20" in out
    assert "Alpha1" not in redact("user u with password Alpha1 refused")


def test_url_password_takes_the_last_at():
    from shipyard.redact import url_password

    assert url_password("postgresql://u:p@ss w@host/db") == "p@ss w"
    assert url_password("postgresql://u@host/db") is None
    assert url_password("not a url") is None


def test_known_secrets_follow_the_settings_in_force(monkeypatch):
    from shipyard.settings import forget_settings, get_settings

    monkeypatch.setenv("SHIPYARD_DESTINATIONS__PG__URL", "postgresql://u:Zulu9Yankee8@h/db")
    get_settings(fresh=True)
    assert "Zulu9Yankee8" not in redact("auth failed for Zulu9Yankee8")
    monkeypatch.delenv("SHIPYARD_DESTINATIONS__PG__URL")
    get_settings(fresh=True)  # another configuration: the old password is not masked any more
    assert redact("Zulu9Yankee8") == "Zulu9Yankee8"
    forget_settings()
    assert redact("loaded 3 rows") == "loaded 3 rows"
