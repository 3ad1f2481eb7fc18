"""The server's configuration parsing (server/security.py options, server/auth.py's auth file,
hashes, header checks and login allowance), read back as the server would use it. Written to kill
the mutants that survived the older security tests (issue 17, item 4). Hashes use few PBKDF2
iterations to stay fast."""

from __future__ import annotations

import argparse
import base64
import io
import sys
from pathlib import Path

import pytest

from fitscribe.errors import ConfigError
from fitscribe.server.auth import (
    Credentials,
    Identity,
    LoginGuard,
    hash_secret,
    load_auth_file,
    new_token,
    verify_secret,
)
from fitscribe.server.security import (
    DEFAULT_ALLOWED_HOSTS,
    MB,
    SecurityConfig,
    add_security_arguments,
    run_secret_helpers,
    security_from_args,
)

HEX = "ab" * 32


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_security_arguments(parser)
    return parser.parse_args(list(argv))


def test_security_options_become_the_config(tmp_path: Path) -> None:
    config = security_from_args(_args())
    assert config.credentials is None and config.allowed_hosts == DEFAULT_ALLOWED_HOSTS
    assert config.cors_allowed_origins == () and config.max_request_bytes == 32 * MB
    assert config.max_upload_bytes == 10 * 1024 * MB and config.failed_logins == 5
    config = security_from_args(_args("--allowed-hosts", " a.example , ,*.b.example:8080,", "--cors-allowed-origins",
                                      "https://ui.example, http://localhost:*", "--max-request-mb", "0.5",
                                      "--max-upload-mb", "0"))
    assert config.allowed_hosts == ("a.example", "*.b.example:8080")
    assert config.cors_allowed_origins == ("https://ui.example", "http://localhost:*")
    assert (config.max_request_bytes, config.max_upload_bytes) == (MB // 2, 0)
    assert security_from_args(_args("--cors-allowed-origins", "")).cors_allowed_origins == ()
    assert security_from_args(_args("--allowed-hosts", "*")).allowed_hosts == ("*",)
    assert security_from_args(_args("--cors-allowed-origins", "*")).cors_allowed_origins == ("*",)
    token, digest = new_token()
    (tmp_path / "auth.yaml").write_text(f"tokens:\n  bot: {{token_hash: '{digest}', access: read-write}}\n")
    credentials = security_from_args(_args("--auth-file", str(tmp_path / "auth.yaml"))).credentials
    assert credentials is not None and credentials.authenticate(f"Bearer {token}") == Identity("bot", True)
    for argv in (["--max-request-mb", "-0.5"], ["--max-upload-mb", "-1"], ["--allowed-hosts", "a/b"],
                 ["--allowed-hosts", "a@b"], ["--allowed-hosts", "a?b"], ["--allowed-hosts", "a#b"],
                 ["--allowed-hosts", "a\\b"], ["--cors-allowed-origins", "https://"],
                 ["--cors-allowed-origins", "https://a b"], ["--cors-allowed-origins", "ui.example"]):
        with pytest.raises(ConfigError, match="--"):
            security_from_args(_args(*argv))
    with pytest.raises(ConfigError, match="^--max-request-mb must be 0 \\(no limit\\) or more, not -0.5.$"):
        security_from_args(_args("--max-request-mb", "-0.5"))
    with pytest.raises(ConfigError, match="^--allowed-hosts: 'a/b' is not a valid pattern; give e.g. 'tracking.example.com', or '\\*'.$"):
        security_from_args(_args("--allowed-hosts", "a/b"))
    with pytest.raises(ConfigError, match="^--cors-allowed-origins: 'https://a://b' is not a valid pattern; give e.g. "
                                          "'https://ui.example.com' or 'http://localhost:\\*', or '\\*'.$"):
        security_from_args(_args("--cors-allowed-origins", "https://a://b"))
    assert security_from_args(_args("--allowed-hosts", "XBOX.example,X")).allowed_hosts == ("XBOX.example", "X")
    with pytest.raises(ConfigError, match="^failed_logins must be 0 \\(no limit\\) or more, not -1.$"):
        SecurityConfig(failed_logins=-1)
    assert SecurityConfig(failed_logins=0, max_request_bytes=0).max_request_bytes == 0


@pytest.mark.parametrize("bind, allowed, expected", [
    ("0.0.0.0", DEFAULT_ALLOWED_HOSTS, DEFAULT_ALLOWED_HOSTS),
    ("::", DEFAULT_ALLOWED_HOSTS, DEFAULT_ALLOWED_HOSTS),
    ("", DEFAULT_ALLOWED_HOSTS, DEFAULT_ALLOWED_HOSTS),
    ("127.0.0.1", DEFAULT_ALLOWED_HOSTS, DEFAULT_ALLOWED_HOSTS),
    (" 10.1.2.3 ", DEFAULT_ALLOWED_HOSTS, (*DEFAULT_ALLOWED_HOSTS, "10.1.2.3")),
    ("fe80::1", ("localhost",), ("localhost", "[fe80::1]")),
    ("[fe80::1]", ("localhost",), ("localhost", "[fe80::1]")),
    ("10.1.2.3", ("*",), ("*",)),
    ("10.1.2.3", ("10.1.*.*",), ("10.1.*.*",)),
])
def test_the_bound_address_is_allowed_as_a_host(bind: str, allowed: tuple[str, ...], expected: tuple[str, ...]) -> None:
    assert SecurityConfig(allowed_hosts=allowed).bound_to(bind).allowed_hosts == expected


def test_secret_helpers(monkeypatch: pytest.MonkeyPatch) -> None:
    lines: list[str] = []
    assert run_secret_helpers(_args(), lines.append) is False and lines == []
    assert run_secret_helpers(_args("--new-token"), lines.append) is True
    token = lines[0].rsplit(": ", 1)[1]
    digest = lines[1].rsplit(": ", 1)[1]
    assert len(lines) == 2 and verify_secret(token, digest) and not verify_secret(token + "x", digest)
    monkeypatch.setattr(sys, "stdin", io.StringIO("pass word\r\nignored\n"))
    lines.clear()
    assert run_secret_helpers(_args("--hash-secret"), lines.append) is True
    assert len(lines) == 1 and verify_secret("pass word", lines[0]) and not verify_secret("pass word\r", lines[0])
    monkeypatch.setattr(sys, "stdin", io.StringIO("ends in a space \n"))
    lines.clear()
    assert run_secret_helpers(_args("--hash-secret"), lines.append) is True
    assert verify_secret("ends in a space ", lines[0])  # only the line break is dropped


def _auth_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "auth.yaml"
    path.write_text(text)
    return str(path)


def test_an_auth_file_is_read_with_its_access(tmp_path: Path) -> None:
    alice, viewer = hash_secret("pw-a", iterations=1000), hash_secret("pw-v", iterations=2)
    token, token_hash = new_token()
    path = _auth_file(tmp_path, f"""
users:
  alice: {{password_hash: '{alice}', access: read-write}}
  viewer: {{password_hash: '{viewer}'}}
  ro: {{password_hash: '{viewer}', access: read-only}}
tokens:
  'ci:bot': {{token_hash: '{token_hash.upper().replace("SHA256$", "sha256$")}', access: read-write}}
  reader: {{token_hash: 'sha256${HEX}'}}
""")
    credentials = load_auth_file(path)
    assert credentials.users == {"alice": (alice, True), "viewer": (viewer, False), "ro": (viewer, False)}
    assert set(credentials.tokens) == {"ci:bot", "reader"} and credentials.tokens["reader"] == (f"sha256${HEX}", False)
    assert credentials.source == path and "3 users, 2 tokens" in repr(credentials)
    assert credentials.authenticate(_basic("alice", "pw-a")) == Identity("alice", True)
    assert credentials.authenticate(_basic("viewer", "pw-v")) == Identity("viewer", False)
    assert credentials.authenticate(f"Bearer {token}") == Identity("ci:bot", True)  # upper-case hex is fine
    assert load_auth_file(_auth_file(tmp_path, f"users: {{u: {{password_hash: '{viewer}'}}}}\ntokens:\n")).tokens == {}
    assert load_auth_file(_auth_file(tmp_path, f"tokens: {{t: {{token_hash: 'sha256${HEX}'}}}}\n")).users == {}


@pytest.mark.parametrize("text", [
    "[users]\n", "just text\n", "{}\n", "users: {}\nadmins: {}\n", "users:\ntokens:\n", "users: {}\ntokens: {}\n",
    "users: x\n", "tokens: [a]\n",
    "users: {'': {password_hash: 'sha256$" + HEX + "'}}\n",
    "users: {1: {password_hash: 'sha256$" + HEX + "'}}\n",
    "users: {'a:b': {password_hash: 'sha256$" + HEX + "'}}\n",
    "tokens: {'': {token_hash: 'sha256$" + HEX + "'}}\n",
    "users: {a: 'sha256$" + HEX + "'}\n",
    "users: {a: {}}\n",
    "users: {a: {token_hash: 'sha256$" + HEX + "'}}\n",
    "users: {a: {password_hash: 'sha256$" + HEX + "', access: read-write, admin: yes}}\n",
    "users: {a: {password_hash: 12}}\n",
    "users: {a: {password_hash: 'sha256$" + HEX[:-1] + "'}}\n",
    "users: {a: {password_hash: 'sha256$" + HEX + "0'}}\n",
    "users: {a: {password_hash: 'sha256$" + HEX[:-1] + "g'}}\n",
    "users: {a: {password_hash: 'sha512$" + HEX + "'}}\n",
    "users: {a: {password_hash: 'pbkdf2_sha256$1000$c2FsdA'}}\n",
    "users: {a: {password_hash: 'pbkdf2_sha256$0$c2FsdA$ZGlnZXN0'}}\n",
    "users: {a: {password_hash: 'pbkdf2_sha256$-5$c2FsdA$ZGlnZXN0'}}\n",
    "users: {a: {password_hash: 'pbkdf2_sha256$1e3$c2FsdA$ZGlnZXN0'}}\n",
    "users: {a: {password_hash: 'pbkdf2_sha256$1000$c2Fs!A$ZGlnZXN0'}}\n",
    "users: {a: {password_hash: 'pbkdf2_sha256$1000$c2FsdA$ZGln*XN0'}}\n",
    "users: {a: {password_hash: 'pbkdf2_sha256$1000$c2FsdA$ZGlnZXN0$x'}}\n",
    "users: {a: {password_hash: 'sha256$" + HEX + "', access: write}}\n",
    "users: {a: {password_hash: 'sha256$" + HEX + "', access: null}}\n",
    "users: {a: [\n",
])
def test_bad_auth_files_are_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match="auth file"):
        load_auth_file(_auth_file(tmp_path, text))


@pytest.mark.parametrize("stored, reason", [
    ("plain", "it is not a hash ('pbkdf2_sha256$...' or 'sha256$...'); the file must not hold plain secrets"),
    ("sha256$abc", "a 'sha256$' hash needs 64 hex digits after the '$'"),
    ("pbkdf2_sha256$0$c2FsdA$ZGlnZXN0", "a 'pbkdf2_sha256' hash reads 'pbkdf2_sha256$<iterations>$<salt>$<digest>'"),
    ("pbkdf2_sha256$5$c2F*dA$ZGlnZXN0", "the salt and digest of a 'pbkdf2_sha256' hash must be base64"),
])
def test_why_a_hash_is_unusable(tmp_path: Path, stored: str, reason: str) -> None:
    path = _auth_file(tmp_path, f"users: {{alice: {{password_hash: '{stored}'}}}}\n")
    with pytest.raises(ConfigError) as raised:
        load_auth_file(path)
    assert str(raised.value) == (f"In the auth file {path!r}, users.alice.password_hash is unusable: {reason}; make one with "
                                 "`fitscribe server --hash-secret` (passwords) or `fitscribe server --new-token` (tokens).")


def test_hash_and_token_formats() -> None:
    stored = hash_secret("x", iterations=7)
    scheme, iterations, salt, digest = stored.split("$")
    assert (scheme, iterations, len(salt), len(digest)) == ("pbkdf2_sha256", "7", 22, 43)  # unpadded base64
    token, token_hash = new_token()
    assert len(token) == 43 and token_hash == "sha256$" + __import__("hashlib").sha256(token.encode()).hexdigest()


def test_a_good_pbkdf2_hash_with_one_iteration_is_accepted(tmp_path: Path) -> None:
    stored = hash_secret("x", iterations=1)
    assert load_auth_file(_auth_file(tmp_path, f"users: {{a: {{password_hash: '{stored}'}}}}\n")).users["a"][0] == stored
    with pytest.raises(ConfigError, match="auth file"):
        load_auth_file(str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match="empty secret"):
        hash_secret("")


def test_authorization_headers() -> None:
    token, token_hash = new_token()
    other, other_hash = new_token()
    credentials = Credentials({"alice": (hash_secret("pw:with:colons", iterations=10), False)},
                              {"first": (token_hash, True), "second": (other_hash, False)})
    good = _basic("alice", "pw:with:colons")
    assert credentials.cached(good) is None
    assert credentials.authenticate(good) == Identity("alice", False)
    assert credentials.cached(good) == Identity("alice", False)
    assert credentials.authenticate("basic " + good.split(" ", 1)[1]) == Identity("alice", False)
    assert credentials.authenticate(f"  bearer   {other}  ") == Identity("second", False)
    assert credentials.authenticate(f"Bearer {token}") == Identity("first", True)
    encoded = good.split(" ", 1)[1]
    assert credentials.authenticate("Basic " + encoded[:4] + "!" + encoded[4:]) is None  # not base64: refused
    for bad in (_basic("alice", "pw"), _basic("bob", "pw:with:colons"), "Basic " + base64.b64encode(b"alice").decode(),
                "Basic !!!", "Basic " + base64.b64encode(b"\xff:\xfe").decode(), "Basic", "Basic ", "Bearer",
                "Bearer  ", f"Token {token}", token, f"Bearer {token}x", ""):
        assert credentials.authenticate(bad) is None, bad
        assert credentials.cached(bad) is None, bad


def test_remembered_headers_are_bounded() -> None:
    token, token_hash = new_token()
    credentials = Credentials({}, {"t": (token_hash, True)})
    headers = [f"Bearer{' ' * (i + 1)}{token}" for i in range(1025)]
    for header in headers[:1024]:
        assert credentials.authenticate(header) == Identity("t", True)
    assert all(credentials.cached(h) is not None for h in headers[:1024])
    credentials.authenticate(headers[1024])  # the 1025th empties the memory first
    assert credentials.cached(headers[0]) is None and credentials.cached(headers[1024]) == Identity("t", True)


def test_login_allowance_arithmetic() -> None:
    now = [100.0]
    guard = LoginGuard(burst=3, refill_seconds=2.0, max_addresses=20, clock=lambda: now[0])
    assert not guard.suspect("a")
    assert [guard.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert guard.suspect("a") and not guard.suspect("b")
    assert guard.take("a") == 2.0
    now[0] += 0.5
    assert guard.take("a") == 1.5
    now[0] += 1.5  # one attempt back
    assert guard.take("a") == 0.0 and guard.take("a") == 2.0
    guard.give_back("a")  # that success returns its attempt
    assert guard.take("a") == 0.0
    now[0] += 100  # full again: forgotten once a success returns the last attempt
    assert not guard.suspect("a")
    guard.take("a")
    guard.give_back("a")
    assert not guard.suspect("a")
    guard.take("c")
    now[0] += 1.0
    guard.give_back("c")  # 2 + 0.5 + 1: full, capped at burst
    assert not guard.suspect("c") and [guard.take("c") for _ in range(4)] == [0.0, 0.0, 0.0, 2.0]


def test_login_allowance_forgets_the_fullest_addresses_first() -> None:
    now = [0.0]
    guard = LoginGuard(burst=5, refill_seconds=1000.0, max_addresses=20, clock=lambda: now[0])
    for i in range(20):
        for _ in range(1 + (i % 4)):
            guard.take(f"10.0.0.{i}")
    known = [f"10.0.0.{i}" for i in range(20)]
    assert all(guard.suspect(a) for a in known)
    guard.take("10.0.1.1")  # one more: the 10% fullest (2 addresses, one attempt used each) are forgotten
    assert guard.suspect("10.0.1.1")
    assert [a for a in known if not guard.suspect(a)] == ["10.0.0.0", "10.0.0.4"]
    small = LoginGuard(burst=5, refill_seconds=1000.0, max_addresses=3, clock=lambda: now[0])
    for address in ("a", "b", "c", "d"):
        small.take(address)
    assert [a for a in "abcd" if small.suspect(a)] == ["b", "c", "d"]  # at least one forgotten


def test_login_allowance_defaults() -> None:
    """Five failed logins at once, then one every 2 s; 10,000 addresses remembered."""
    now = [0.0]
    guard = LoginGuard(clock=lambda: now[0])
    assert [guard.take("a") for _ in range(6)] == [0.0] * 5 + [2.0]
    for i in range(9_999):
        guard.take(f"b{i}")
    assert guard.suspect("a") and guard.suspect("b0")  # 10,000 remembered: nobody forgotten yet
    guard.take("c")  # the 10,001st: the fullest tenth goes (the b's, one attempt used each)
    assert guard.suspect("a") and not guard.suspect("b0") and guard.suspect("c")
