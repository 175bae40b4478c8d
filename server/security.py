"""Secrets, hashes and signed tokens.

* API keys and other bearer secrets: random, shown once, stored only as SHA-256 digests and
  found by digest (an index lookup on the digest leaks nothing about the secret, so no
  character-by-character comparison of secrets ever happens). SHA-256, not a slow hash, is
  right here because the secrets carry 196 random bits; passwords, which people choose, use
  Argon2.
* Signed tokens: itsdangerous with one salt per purpose, ``max_age`` on every load, and the
  key list from FLINT_SECRET_KEY for rotation. The payload is signed, not encrypted.
* Secrets Flint must use itself (webhook signing secrets) cannot be hashed: they are encrypted
  at rest (``SecretBox``: Fernet, AES-128-CBC + HMAC-SHA256) under keys derived from
  FLINT_SECRET_KEY, the newest encrypting and all decrypting, so the key list rotates them too.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from flint.errors import FlintError

_password_hasher = PasswordHasher()

# One itsdangerous salt per purpose, all here: a token signed for one purpose never verifies for another.
CLIENT_TOKEN_SALT = "flint.checkout.client_token.v1"  # a buyer's checkout session (docs/api.md 4)
FORM_SALT = "flint.hosted.form.v1"  # a plain HTML form's single-use token (flint.forms)
CSRF_SALT = "flint.web.csrf.v1"  # a signed-in person's forms (flint.web)
CONSENT_SALT = "flint.oauth.consent.v1"  # what an OAuth consent page showed (flint.web.oauth)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def hash_password(password: str) -> str:
    return _password_hasher.hash(password)


def password_matches(password: str, stored_hash: str) -> bool:
    try:
        return _password_hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


class Signer:
    """Purpose-bound itsdangerous serializers over the rotating key list."""

    def __init__(self, secret_keys: tuple[str, ...]) -> None:
        if not secret_keys:
            raise ValueError("at least one secret key is required")
        # itsdangerous signs with the *last* key and verifies with all; FLINT_SECRET_KEY lists
        # the newest first, so reverse it.
        self._keys = list(reversed(secret_keys))
        self._serializers: dict[str, URLSafeTimedSerializer] = {}

    def serializer(self, salt: str) -> URLSafeTimedSerializer:
        found = self._serializers.get(salt)
        if found is None:
            found = self._serializers[salt] = URLSafeTimedSerializer(self._keys, salt=salt)
        return found

    def dumps(self, salt: str, payload: Any) -> str:
        return self.serializer(salt).dumps(payload)

    def loads(self, salt: str, token: str, max_age: float, *, kind: str) -> Any:
        """Expired and forged tokens are distinct errors (clients handle them differently)."""
        try:
            return self.serializer(salt).loads(token, max_age=max_age)
        except SignatureExpired:
            raise FlintError(401, f"{kind}_expired", f"This {kind.replace('_', ' ')} has expired.")
        except BadSignature:
            raise FlintError(401, f"{kind}_invalid", f"This {kind.replace('_', ' ')} is not valid.")


class SecretBox:
    """Encrypts secrets Flint must read back (webhook signing secrets) for storage."""

    def __init__(self, secret_keys: tuple[str, ...]) -> None:
        # One derived key per FLINT_SECRET_KEY entry (newest first: MultiFernet encrypts with the
        # first and decrypts with any). Derived with a purpose label, so these keys are never the
        # ones itsdangerous signs with.
        self._fernet = MultiFernet([
            Fernet(base64.urlsafe_b64encode(hmac.new(key.encode(), b"flint.secretbox.v1", hashlib.sha256).digest()))
            for key in secret_keys
        ])

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def reseal(self, sealed: str) -> str | None:
        """The same secret sealed under the newest key; None if no key in the list opens it."""
        try:
            return self._fernet.rotate(sealed.encode()).decode()
        except InvalidToken:
            return None

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise RuntimeError("a stored secret cannot be decrypted: was FLINT_SECRET_KEY replaced "
                               "without keeping the old key in the list?") from None
