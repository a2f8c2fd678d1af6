"""Configuration snapshots: a digest to notice change cheaply, and the key-by-key difference."""

from __future__ import annotations

import hashlib
import json

from kubestack.contract.events import ConfigDiff


def digest(config: dict[str, str]) -> str:
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def diff(old: dict[str, str], new: dict[str, str]) -> list[ConfigDiff]:
    """Added (old None), removed (new None) and changed keys, sorted by key."""
    return [
        ConfigDiff(key=key, old=old.get(key), new=new.get(key))
        for key in sorted(old.keys() | new.keys())
        if old.get(key) != new.get(key)
    ]
