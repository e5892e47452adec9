"""PII at rest: authenticated encryption with key ids, per-patient keys and blind indexes.

A stored value is ``"<alg>:<kid>:<base64url(nonce | ciphertext | tag)>"``: ``a1`` is
AES-256-GCM, ``s1`` SM4-GCM (GB/T 32907). The key that encrypts a patient's values is
derived with HKDF from a master key (``CAREPOINTS_PII_KEY``, or an older one listed in
``CAREPOINTS_PII_OLD_KEYS`` while keys rotate) and the patient's own random salt (the
``patient_keys`` row): deleting that row crypto-shreds the patient, because no master
key alone can read their values any more. The additional authenticated data is the
patient id and the column name, so a value cannot be moved to another row or column.

Blind indexes (HMAC-SHA256, or HMAC-SM3 with the SM4 cipher) of normalised phone
numbers and national ids make lookups possible without decrypting; their key is
derived from the master key with a distinct HKDF info, so it differs from every cipher
key. ``keys rotate`` recomputes them under the current key; until then lookups try
every configured key.

Nothing here touches the database; callers pass the salt."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from carepoints.config import Settings, get_settings

AES, SM4 = "a1", "s1"
CIPHERS = {"aes-gcm": AES, "sm4-gcm": SM4}
_NONCE = 12
_TAG = 16
_KID = re.compile(r"^[A-Za-z0-9_-]{1,16}$")
MIN_SECRET = 16
SALT_BYTES = 32


class UnreadableError(Exception):
    """A value that cannot be decrypted: unknown key id, shredded key, tampering or garbage.
    Carries no part of the value."""


@dataclass(frozen=True, slots=True)
class MasterKey:
    kid: str
    secret: bytes = field(repr=False)


def key_id(secret: str) -> str:
    """The id of a bare secret: the first 8 hex digits of its SHA-256."""
    return hashlib.sha256(secret.encode()).hexdigest()[:8]


def parse_key(raw: str) -> MasterKey:
    """A key given as ``secret`` or ``kid:secret``."""
    raw = raw.strip()
    kid, sep, rest = raw.partition(":")
    if sep and _KID.match(kid) and rest:
        secret = rest
    else:
        kid, secret = key_id(raw), raw
    if len(secret) < MIN_SECRET:
        raise ValueError(f"PII key {kid}: a key needs at least {MIN_SECRET} characters")
    return MasterKey(kid, secret.encode())


def _hash(alg: str) -> hashes.HashAlgorithm:
    return hashes.SM3() if alg == SM4 else hashes.SHA256()


@lru_cache(maxsize=4096)
def _data_key(alg: str, secret: bytes, salt: bytes) -> bytes:
    """The per-patient key of one master key (cached: HKDF per value would dominate reads)."""
    length = 16 if alg == SM4 else 32
    return HKDF(algorithm=_hash(alg), length=length, salt=salt,
                info=b"carepoints-pii/" + alg.encode()).derive(secret)


@lru_cache(maxsize=64)
def _index_key(mac: str, secret: bytes) -> bytes:
    return HKDF(algorithm=_hash(mac), length=32, salt=None,
                info=b"carepoints-blind-index/" + mac.encode()).derive(secret)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _aad(patient_id: str, column: str) -> bytes:
    return f"{patient_id}|{column}".encode()


def normalise_phone(phone: str) -> str:
    """Digits only, without the +86 / 0086 country prefix (so "+86 138-1234-5678" = "13812345678")."""
    digits = re.sub(r"[^0-9]", "", phone)
    stripped = phone.strip()
    if stripped.startswith("+86"):
        return digits[2:]
    if stripped.startswith("0086") and len(digits) > 11:
        return digits[4:]
    if len(digits) == 13 and digits.startswith("861"):
        return digits[2:]
    return digits


def normalise_id_number(number: str) -> str:
    return re.sub(r"\s", "", number).upper()


_NORMALISE = {"phone": normalise_phone, "id_number": normalise_id_number}


@dataclass(frozen=True)
class Keyring:
    """The configured master keys: the current one encrypts, every one decrypts."""

    current: MasterKey
    old: tuple[MasterKey, ...] = ()
    cipher: str = "aes-gcm"

    @property
    def alg(self) -> str:
        return CIPHERS[self.cipher]

    @property
    def tag(self) -> str:
        """``alg:kid`` of values written now; values with another tag need rotation."""
        return f"{self.alg}:{self.current.kid}"

    def _secret(self, kid: str) -> bytes:
        if kid == self.current.kid:
            return self.current.secret
        for key in self.old:
            if key.kid == kid:
                return key.secret
        raise UnreadableError(f"no PII key with id {kid}")

    def encrypt(self, patient_id: str, column: str, salt: bytes, value: str) -> str:
        key = _data_key(self.alg, self.current.secret, salt)
        nonce = os.urandom(_NONCE)
        aad = _aad(patient_id, column)
        if self.alg == AES:
            sealed = AESGCM(key).encrypt(nonce, value.encode(), aad)
        else:
            enc = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
            enc.authenticate_additional_data(aad)
            sealed = enc.update(value.encode()) + enc.finalize() + enc.tag
        return f"{self.tag}:{_b64(nonce + sealed)}"

    def decrypt(self, patient_id: str, column: str, salt: bytes, token: str) -> str:
        alg, kid, body = _split(token)
        key = _data_key(alg, self._secret(kid), salt)
        try:
            raw = _unb64(body)
        except (binascii.Error, ValueError) as exc:
            raise UnreadableError("malformed PII value") from exc
        if len(raw) < _NONCE + _TAG:
            raise UnreadableError("malformed PII value")
        nonce, sealed = raw[:_NONCE], raw[_NONCE:]
        aad = _aad(patient_id, column)
        try:
            if alg == AES:
                plain = AESGCM(key).decrypt(nonce, sealed, aad)
            else:
                dec = Cipher(algorithms.SM4(key), modes.GCM(nonce, sealed[-_TAG:])).decryptor()
                dec.authenticate_additional_data(aad)
                plain = dec.update(sealed[:-_TAG]) + dec.finalize()
        except InvalidTag as exc:
            raise UnreadableError(f"PII value does not authenticate under key {kid}") from exc
        return plain.decode()

    def is_current(self, token: str) -> bool:
        return token.startswith(self.tag + ":")

    def _index(self, mac: str, secret: bytes, kind: str, value: str) -> str:
        h = crypto_hmac.HMAC(_index_key(mac, secret), _hash(mac))
        h.update(f"{kind}:{_NORMALISE[kind](value)}".encode())
        return h.finalize().hex()

    def blind_index(self, kind: str, value: str) -> str:
        """The index of a phone (``kind="phone"``) or national id (``"id_number"``) under the current key."""
        return self._index(self.alg, self.current.secret, kind, value)

    def index_candidates(self, kind: str, value: str) -> list[str]:
        """Every index the value may be stored under (current and old keys, both MACs: rows not
        yet rotated after a key or cipher change are still found); the current one first."""
        out = [self.blind_index(kind, value)]
        for key in (self.current, *self.old):
            for mac in (AES, SM4):
                candidate = self._index(mac, key.secret, kind, value)
                if candidate not in out:
                    out.append(candidate)
        return out


def _split(token: str) -> tuple[str, str, str]:
    alg, _, rest = token.partition(":")
    kid, _, body = rest.partition(":")
    if alg not in (AES, SM4) or not kid or not body:
        raise UnreadableError("malformed PII value")
    return alg, kid, body


def token_tag(token: str) -> str:
    """``alg:kid`` of a stored value (for counts; raises UnreadableError when malformed)."""
    alg, kid, _body = _split(token)
    return f"{alg}:{kid}"


@lru_cache(maxsize=8)
def _keyring(current: str, old: str, cipher: str) -> Keyring:
    if not current:
        raise RuntimeError("CAREPOINTS_PII_KEY is not set")
    key = parse_key(current)
    olds: list[MasterKey] = []
    for raw in old.split(","):
        if raw.strip():
            parsed = parse_key(raw)
            if parsed.kid != key.kid and parsed.kid not in {k.kid for k in olds}:
                olds.append(parsed)
    return Keyring(key, tuple(olds), cipher)


def keyring(settings: Settings | None = None) -> Keyring:
    """The keyring of the given (default: current) settings; cached per key configuration."""
    s = settings or get_settings()
    return _keyring(s.pii_key, s.pii_old_keys, s.pii_cipher)


def new_salt() -> bytes:
    return os.urandom(SALT_BYTES)
