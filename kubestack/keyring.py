"""A ring of HMAC keys by id, one of them current: what the audit seals and the signed decisions share.

Kept as JSON in a file of mode 0600 in a 0700 folder: ``{"current": "k2", "keys": {"k1": hex, "k2": hex}}``
plus whatever a ring of its own adds (``extra``). Rotation adds a key and makes it current; old keys stay to
check what was signed with them. Each ring says which error it raises (``error``) and what it is (``what``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any, Self

KEY_BYTES = 32


class KeyRing:
    error: type[Exception] = ValueError
    what = "key ring"

    def __init__(self, keys: dict[str, bytes], current: str) -> None:
        if current not in keys:
            raise self.error(f"the {self.what} has no key {current!r}")
        self.keys = keys
        self.current = current

    @classmethod
    def create(cls) -> Self:
        return cls({"k1": secrets.token_bytes(KEY_BYTES)}, "k1")

    @classmethod
    def load(cls, path: Path) -> Self:
        try:
            data = json.loads(path.read_text())
            keys = {kid: bytes.fromhex(key) for kid, key in data["keys"].items()}
            return cls(keys, data["current"], **cls._extra_from(data))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise cls.error(f"cannot read the {cls.what} {path}: {exc}") from exc

    @classmethod
    def _extra_from(cls, data: dict[str, Any]) -> dict[str, Any]:
        """The constructor's further arguments, from the file (none here)."""
        return {}

    def extra(self) -> dict[str, Any]:
        """What this ring keeps in its file besides its keys (none here)."""
        return {}

    def save(self, path: Path) -> None:
        """Written whole to a new file (0600, in a 0700 folder) that then replaces the old one."""
        data = {"current": self.current, **self.extra(), "keys": {kid: key.hex() for kid, key in self.keys.items()}}
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        draft = path.with_name(path.name + ".new")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as stream:
            stream.write(json.dumps(data, indent=1))
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(draft, path)

    def rotate(self) -> str:
        """A new key, current from now on; the id of it."""
        number = 1 + max((int(kid[1:]) for kid in self.keys if kid[1:].isdigit()), default=0)
        kid = f"k{number}"
        self.keys[kid] = secrets.token_bytes(KEY_BYTES)
        self.current = kid
        return kid

    def mac(self, kid: str, text: str) -> str:
        """HMAC-SHA256 of ``text`` under key ``kid`` (KeyError when the ring does not hold it)."""
        return hmac.new(self.keys[kid], text.encode(), hashlib.sha256).hexdigest()
