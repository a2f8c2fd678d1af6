"""Small JSON state the agent keeps across restarts (log positions, last config per target), written
atomically so a crash never leaves half a file."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class StateStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def _path(self, name: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        return self.directory / f"{safe}.json"

    def load(self, name: str, default: Any = None) -> Any:
        try:
            return json.loads(self._path(name).read_text())
        except FileNotFoundError:
            return default
        except (json.JSONDecodeError, OSError) as exc:
            log.warning("state %s unreadable (%s); starting afresh", name, exc)
            return default

    def save(self, name: str, value: Any) -> None:
        path = self._path(name)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(value, sort_keys=True))
        os.replace(tmp, path)
