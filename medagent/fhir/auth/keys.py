"""The client's signing key (a PEM or JWK file): signs JWT client assertions (RS384 or ES384) and gives the
public JWKS the operator registers with the authorization server."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from medagent.config import UserError

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
MIN_RSA_BITS = 2048


@dataclass(frozen=True)
class SigningKey:
    """A private key with the algorithm SMART asks for its kind (RSA: RS384, EC P-384: ES384) and its ``kid``."""

    private: PrivateKey
    algorithm: str
    kid: str

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.private, algorithm=self.algorithm, headers={"kid": self.kid, "typ": "JWT"})

    def public_jwk(self) -> dict[str, Any]:
        if isinstance(self.private, rsa.RSAPrivateKey):
            jwk = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        else:
            jwk = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig", "key_ops": ["verify"]}

    def public_jwks(self) -> dict[str, Any]:
        """What the operator registers with the authorization server (or serves at the client's jwks_url)."""
        return {"keys": [self.public_jwk()]}


def load_signing_key(path: Path, *, kid: str | None = None) -> SigningKey:
    """The key in ``path``: a PEM private key (PKCS#8, PKCS#1 or SEC1) or a private JWK (or a JWKS holding one).
    ``kid`` defaults to the JWK's own ``kid``, else the RFC 7638 thumbprint of the public key.
    Raises :class:`UserError` naming the file and what is wrong with it."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"signing key file {path}: {exc.strerror or exc}") from None
    jwk_kid: str | None = None
    if raw.lstrip().startswith(b"{"):
        private, jwk_kid = _from_jwk(path, raw)
    else:
        try:
            loaded = serialization.load_pem_private_key(raw, password=None)
        except (ValueError, TypeError) as exc:
            raise UserError(
                f"signing key file {path}: not an unencrypted PEM private key or a private JWK ({exc})"
            ) from None
        if not isinstance(loaded, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
            raise UserError(
                f"signing key file {path}: a {type(loaded).__name__} key; SMART needs RSA (RS384) or EC P-384 (ES384)"
            )
        private = loaded
    algorithm = _algorithm(path, private)
    thumbprint = jwk_thumbprint(SigningKey(private, algorithm, "").public_jwk())
    return SigningKey(private, algorithm, kid or jwk_kid or thumbprint)


def _from_jwk(path: Path, raw: bytes) -> tuple[PrivateKey, str | None]:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UserError(f"signing key file {path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if isinstance(data, dict) and isinstance(data.get("keys"), list):
        private_keys = [k for k in data["keys"] if isinstance(k, dict) and "d" in k]
        if len(private_keys) != 1:
            raise UserError(
                f"signing key file {path}: a JWKS must hold exactly one private key, it holds {len(private_keys)}"
            )
        data = private_keys[0]
    if not isinstance(data, dict) or "d" not in data:
        raise UserError(f"signing key file {path}: not a private JWK (no 'd' member: this is a public key)")
    kty = data.get("kty")
    private: object
    try:
        if kty == "RSA":
            private = RSAAlgorithm.from_jwk(data)
        elif kty == "EC":
            private = ECAlgorithm.from_jwk(data)
        else:
            raise UserError(f"signing key file {path}: JWK kty {kty!r}; SMART needs RSA (RS384) or EC P-384 (ES384)")
    except (jwt.InvalidKeyError, ValueError, KeyError) as exc:
        raise UserError(f"signing key file {path}: not a usable {kty} JWK ({exc})") from None
    if not isinstance(private, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise UserError(f"signing key file {path}: not a private JWK")
    return private, data.get("kid")


def _algorithm(path: Path, private: PrivateKey) -> str:
    if isinstance(private, rsa.RSAPrivateKey):
        if private.key_size < MIN_RSA_BITS:
            raise UserError(f"signing key file {path}: an RSA key of {private.key_size} bits; at least {MIN_RSA_BITS}")
        return "RS384"
    if not isinstance(private.curve, ec.SECP384R1):
        raise UserError(f"signing key file {path}: an EC key on {private.curve.name}; ES384 needs P-384 (secp384r1)")
    return "ES384"


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """The RFC 7638 thumbprint of a public JWK (the default ``kid``)."""
    members = ("e", "kty", "n") if jwk["kty"] == "RSA" else ("crv", "kty", "x", "y")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()
