"""Bearer tokens: made with ``secrets``, stored as SHA-256 hashes, compared in constant time; each maps to a
principal with a role and an optional tenant."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from kubestack.apisettings import Role, TokenSpec
from kubestack.api.errors import UnauthorizedError

TOKEN_BYTES = 32


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's name (the actor of what they do), role and tenant (None: every tenant)."""

    name: str
    role: Role
    tenant: str | None = None

    def can(self, needed: Role) -> bool:
        return self.role.allows(needed)

    def sees(self, tenant: str) -> bool:
        return self.tenant is None or self.tenant == tenant


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_spec(token: str, name: str, role: Role, tenant: str | None = None) -> TokenSpec:
    return TokenSpec(name=name, role=role, tenant=tenant, sha256=hash_token(token))


def settings_line(spec: TokenSpec) -> str:
    """The entry to append under ``api.tokens`` in the settings YAML (flow style, one line)."""
    return "- " + json.dumps(spec.model_dump(mode="json"), separators=(", ", ": "))


class TokenBook:
    """The configured tokens; ``authenticate`` turns an Authorization header into a principal."""

    def __init__(self, tokens: list[TokenSpec]) -> None:
        self._tokens = list(tokens)

    def __len__(self) -> int:
        return len(self._tokens)

    def add(self, spec: TokenSpec) -> None:
        self._tokens.append(spec)

    def authenticate(self, header: str | None) -> Principal:
        if not header:
            raise UnauthorizedError("missing Authorization header: send 'Authorization: Bearer <token>'")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise UnauthorizedError("the Authorization header must be 'Bearer <token>'")
        digest = hash_token(token.strip())
        found = None
        for spec in self._tokens:  # every hash is compared, so timing does not tell which one matched
            if hmac.compare_digest(spec.sha256, digest):
                found = spec
        if found is None:
            raise UnauthorizedError("unknown or revoked token")
        return Principal(found.name, found.role, found.tenant)
