"""Credentials of the tracking server: the auth file, secret hashes, and checking an ``Authorization``
header against them.

The auth file (``fitscribe server --auth-file auth.yaml``) is YAML and holds **hashes**, never
secrets::

    users:                      # HTTP basic auth (MLFLOW_TRACKING_USERNAME / _PASSWORD)
      alice:
        password_hash: "pbkdf2_sha256$600000$...$..."
        access: read-write
      viewer:
        password_hash: "pbkdf2_sha256$600000$...$..."
        access: read-only       # the default
    tokens:                     # bearer tokens (MLFLOW_TRACKING_TOKEN / FITSCRIBE_TRACKING_TOKEN)
      ci-bot:
        token_hash: "sha256$..."
        access: read-write

``fitscribe server --hash-secret`` prints the ``pbkdf2_sha256`` hash of a password read from the
terminal (or stdin); ``fitscribe server --new-token`` prints a new random token and its ``sha256``
hash (a plain digest is enough for 256 random bits; passwords need the slow PBKDF2). Comparisons
run in constant time, and a verified header is remembered (by its SHA-256, in memory) so PBKDF2
runs once per credential, not once per request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from fitscribe.errors import ConfigError

__all__ = ["Identity", "Credentials", "LoginGuard", "hash_secret", "new_token", "verify_secret", "load_auth_file"]

PBKDF2_ITERATIONS = 600_000
"""Iterations of PBKDF2-HMAC-SHA256 in hashes made by :func:`hash_secret` (OWASP's 2023 advice)."""

READ_ONLY, READ_WRITE = "read-only", "read-write"
_ACCESS = (READ_ONLY, READ_WRITE)
_CACHE_SIZE = 1024
_HINT = "make one with `fitscribe server --hash-secret` (passwords) or `fitscribe server --new-token` (tokens)"


@dataclass(frozen=True)
class Identity:
    """Who sent a request: the user or token name from the auth file, and whether it may write."""

    name: str
    can_write: bool


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def hash_secret(secret: str, *, iterations: int = PBKDF2_ITERATIONS) -> str:
    """Return ``pbkdf2_sha256$<iterations>$<salt>$<digest>`` for a password or token.

    >>> verify_secret("s3cret", hash_secret("s3cret", iterations=1000))
    True
    """
    if not secret:
        raise ConfigError("Refusing to hash an empty secret; give a password or token.")
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, iterations)
    return f"pbkdf2_sha256${iterations}${_b64(salt)}${_b64(digest)}"


def new_token() -> tuple[str, str]:
    """Return a new random bearer token and its ``sha256$<hex>`` hash for the auth file."""
    token = secrets.token_urlsafe(32)
    return token, "sha256$" + hashlib.sha256(token.encode()).hexdigest()


def check_hash(stored: str) -> None:
    """Raise ``ValueError`` saying what is wrong when ``stored`` is not a hash this module verifies."""
    scheme, _, rest = stored.partition("$")
    if scheme == "sha256":
        if len(rest) != 64 or any(c not in "0123456789abcdef" for c in rest.lower()):
            raise ValueError("a 'sha256$' hash needs 64 hex digits after the '$'")
    elif scheme == "pbkdf2_sha256":
        parts = rest.split("$")
        if len(parts) != 3 or not parts[0].isdigit() or int(parts[0]) < 1:
            raise ValueError("a 'pbkdf2_sha256' hash reads 'pbkdf2_sha256$<iterations>$<salt>$<digest>'")
        try:
            _unb64(parts[1]), _unb64(parts[2])
        except ValueError:
            raise ValueError("the salt and digest of a 'pbkdf2_sha256' hash must be base64") from None
    else:
        raise ValueError("it is not a hash ('pbkdf2_sha256$...' or 'sha256$...'); the file must not hold plain secrets")


def verify_secret(secret: str, stored: str) -> bool:
    """Return True when ``secret`` matches a stored hash (compared in constant time).

    Args:
        secret: The password or token the client sent.
        stored: A hash from :func:`hash_secret` or :func:`new_token` (``pbkdf2_sha256$...`` or
            ``sha256$<hex>``).
    """
    scheme, _, rest = stored.partition("$")
    if scheme == "sha256":
        return hmac.compare_digest(hashlib.sha256(secret.encode()).hexdigest(), rest.lower())
    iterations, salt, digest = rest.split("$")
    computed = hashlib.pbkdf2_hmac("sha256", secret.encode(), _unb64(salt), int(iterations))
    return hmac.compare_digest(computed, _unb64(digest))


@dataclass
class Credentials:
    """The users and tokens a server accepts (from :func:`load_auth_file`).

    Args:
        users: User name -> (password hash, may write).
        tokens: Token name -> (token hash, may write).
        source: Where they were read from, for messages.
    """

    users: dict[str, tuple[str, bool]]
    tokens: dict[str, tuple[str, bool]]
    source: str = "<memory>"
    _verified: dict[bytes, Identity] = field(default_factory=dict, repr=False, compare=False)

    def __repr__(self) -> str:
        return f"Credentials({len(self.users)} users, {len(self.tokens)} tokens from {self.source!r})"

    def cached(self, authorization: str) -> Identity | None:
        """Return the identity of a header verified before, or None (cheap: no PBKDF2)."""
        return self._verified.get(_cache_key(authorization))

    def authenticate(self, authorization: str) -> Identity | None:
        """Return the identity an ``Authorization`` header proves, or None (slow: may run PBKDF2).

        Accepts ``Basic <base64 user:password>`` and ``Bearer <token>``; anything else is None.
        Successful checks are remembered (by the header's SHA-256), so repeating one is cheap.
        """
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        identity: Identity | None = None
        if scheme.lower() == "basic" and value:
            identity = self._basic(value)
        elif scheme.lower() == "bearer" and value:
            identity = self._bearer(value)
        if identity is not None:
            if len(self._verified) >= _CACHE_SIZE:
                self._verified.clear()
            self._verified[_cache_key(authorization)] = identity
        return identity

    def _basic(self, value: str) -> Identity | None:
        try:
            user, sep, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        entry = self.users.get(user) if sep else None
        if entry is None:
            verify_secret(password, _DUMMY_HASH)  # the same work as for a known user: no timing oracle
            return None
        return Identity(user, entry[1]) if verify_secret(password, entry[0]) else None

    def _bearer(self, token: str) -> Identity | None:
        found: Identity | None = None
        for name, (stored, can_write) in self.tokens.items():  # all of them: time does not tell which
            if verify_secret(token, stored) and found is None:
                found = Identity(name, can_write)
        return found


class LoginGuard:
    """Failed logins per client address, as a token bucket: ``burst`` attempts at once, then one
    more every ``refill_seconds``. A login check takes a token before PBKDF2 runs and gives it back
    when the credentials are right, so only failures use the allowance up.

    Args:
        burst: Logins with unverified credentials an address may try in a row.
        refill_seconds: Seconds until a used attempt is available again.
        max_addresses: Addresses remembered at most (the fullest buckets are dropped first).
        clock: Monotonic seconds (a parameter for tests of the arithmetic).

    >>> guard = LoginGuard(burst=2, refill_seconds=10, clock=lambda: 0.0)
    >>> guard.take("10.0.0.1"), guard.take("10.0.0.1"), guard.take("10.0.0.1")
    (0.0, 0.0, 10.0)
    """

    def __init__(self, burst: int = 5, refill_seconds: float = 2.0, max_addresses: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.burst = burst
        self.refill_seconds = refill_seconds
        self.max_addresses = max_addresses
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, as of when)

    def _tokens(self, address: str, now: float) -> float:
        tokens, since = self._buckets.get(address, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - since) / self.refill_seconds)

    def suspect(self, address: str) -> bool:
        """Return True when the address failed a login recently (its allowance is not full)."""
        with self._lock:
            return self._tokens(address, self._clock()) < self.burst

    def take(self, address: str) -> float:
        """Take one attempt for ``address``; return 0, or the seconds to wait when none is left."""
        with self._lock:
            now = self._clock()
            tokens = self._tokens(address, now)
            if tokens < 1:
                return (1 - tokens) * self.refill_seconds
            if address not in self._buckets and len(self._buckets) >= self.max_addresses:
                self._forget_fullest(now)
            self._buckets[address] = (tokens - 1, now)
            return 0.0

    def give_back(self, address: str) -> None:
        """Return the attempt taken for a login that succeeded."""
        with self._lock:
            now = self._clock()
            tokens = min(float(self.burst), self._tokens(address, now) + 1)
            if tokens >= self.burst:
                self._buckets.pop(address, None)
            else:
                self._buckets[address] = (tokens, now)

    def _forget_fullest(self, now: float) -> None:
        ranked = sorted(self._buckets, key=lambda a: self._tokens(a, now), reverse=True)
        for address in ranked[: max(1, len(ranked) // 10)]:
            del self._buckets[address]


def _cache_key(authorization: str) -> bytes:
    return hashlib.sha256(authorization.encode("utf-8", "surrogateescape")).digest()


_DUMMY_HASH = "pbkdf2_sha256$%d$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" % PBKDF2_ITERATIONS


def load_auth_file(path: str) -> Credentials:
    """Read an auth file (see the module docstring for its format).

    Raises:
        ConfigError: The file is missing or unreadable, is not YAML, or an entry is malformed
            (the message names the entry and the fix; secrets are never shown).
    """
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as exc:
        raise ConfigError(f"Cannot read the auth file {path!r} (--auth-file): {exc.strerror or exc}.") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        raise ConfigError(f"The auth file {path!r} is not valid YAML{line}; see `fitscribe server --help`.") from None
    if not isinstance(data, dict) or not set(data) <= {"users", "tokens"} or not data:
        raise ConfigError(f"The auth file {path!r} must be a mapping with 'users' and/or 'tokens' sections, "
                          f"got {sorted(data) if isinstance(data, dict) else type(data).__name__}.")
    users = _section(path, data, "users", "password_hash")
    tokens = _section(path, data, "tokens", "token_hash")
    if not users and not tokens:
        raise ConfigError(f"The auth file {path!r} lists no users and no tokens; nobody could log in.")
    return Credentials(users, tokens, path)


def _section(path: str, data: Mapping[str, Any], section: str, hash_key: str) -> dict[str, tuple[str, bool]]:
    """Parse ``users`` or ``tokens``: name -> {<hash_key>, access}."""
    entries = data.get(section) or {}
    if not isinstance(entries, dict):
        raise ConfigError(f"In the auth file {path!r}, '{section}' must map names to entries, "
                          f"e.g. {section}: {{alice: {{{hash_key}: ..., access: read-write}}}}.")
    out: dict[str, tuple[str, bool]] = {}
    for name, entry in entries.items():
        where = f"In the auth file {path!r}, {section}.{name}"
        if not isinstance(name, str) or not name or (section == "users" and ":" in name):
            raise ConfigError(f"In the auth file {path!r}, {section} has a bad name {name!r}: "
                              "use a non-empty string (user names may not contain ':').")
        if not isinstance(entry, dict) or not set(entry) <= {hash_key, "access"} or hash_key not in entry:
            keys = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
            raise ConfigError(f"{where} must be a mapping with '{hash_key}' and optional 'access', got {keys}.")
        stored, access = entry[hash_key], entry.get("access", READ_ONLY)
        try:
            check_hash(stored if isinstance(stored, str) else "")
        except ValueError as exc:
            raise ConfigError(f"{where}.{hash_key} is unusable: {exc}; {_HINT}.") from None
        if access not in _ACCESS:
            raise ConfigError(f"{where}.access is {access!r}; use {READ_ONLY!r} or {READ_WRITE!r}.")
        out[name] = (stored, access == READ_WRITE)
    return out
