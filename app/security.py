"""Password hashing and secret digests."""

from __future__ import annotations

import hashlib
import secrets
from functools import cache
from pathlib import Path

import bcrypt
from flask import current_app

# bcrypt only reads the first 72 bytes of a password; longer ones are refused at
# registration rather than silently truncated.
MAX_PASSWORD_BYTES = 72
MIN_PASSWORD_LENGTH = 10

# The 10,000 most common passwords, most common first, lower-cased: the first 10,000 lines
# of Royce Williams's list of the 20,000 most common passwords in the Have I Been Pwned data
# (https://gist.github.com/roycewilliams/226886fd01572964e1431ac8afc999ce), as Django 5.2.20
# ships it, lower-cased and deduplicated, in django/contrib/auth/common-passwords.txt.gz.
COMMON_PASSWORDS_FILE = Path(__file__).resolve().parent / "data" / "common-passwords.txt"

# A hash per cost factor, checked against when there is no user, for even timing.
_dummy_hashes: dict[int, bytes] = {}


@cache
def common_passwords() -> frozenset[str]:
    """The common passwords, lower-cased; read once per process."""
    return frozenset(COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines())


def is_common_password(password: str) -> bool:
    """Whether a password is one of the 10,000 most common, whatever its case."""
    # The list is lower-cased: "Password" and "PASSWORD" are as common as "password".
    return password.lower() in common_passwords()


def hash_password(password: str) -> str:
    """bcrypt hash of a password with the configured cost."""
    salt = bcrypt.gensalt(rounds=current_app.config["BCRYPT_ROUNDS"])
    return bcrypt.hashpw(password.encode(), salt).decode()


def check_password(password: str, password_hash: str | None) -> bool:
    """Compare a password with a hash; with no hash, spend the same time and say no."""
    candidate = password.encode()
    if len(candidate) > MAX_PASSWORD_BYTES:
        # No stored password can be this long; hash a cut copy so timing stays alike.
        candidate = candidate[:MAX_PASSWORD_BYTES]
        password_hash = None
    if password_hash is None:
        rounds = current_app.config["BCRYPT_ROUNDS"]
        if rounds not in _dummy_hashes:
            _dummy_hashes[rounds] = bcrypt.hashpw(b"coffer-timing", bcrypt.gensalt(rounds))
        bcrypt.checkpw(candidate, _dummy_hashes[rounds])
        return False
    return bcrypt.checkpw(candidate, password_hash.encode())


def new_secret(prefix: str = "") -> str:
    """A random URL-safe secret of 256 bits."""
    return prefix + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """The SHA-256 hex digest under which a secret is stored."""
    return hashlib.sha256(secret.encode()).hexdigest()
