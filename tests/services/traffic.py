"""Steady HTTP traffic from a background thread, for fault tests whose rules judge the requests of each window."""

from __future__ import annotations

import threading

from tests.services.http_backends import get


class Traffic:
    """GETs ``url`` every ``every_s`` until ``stop()``; counts the statuses it got."""

    def __init__(self, url: str, every_s: float = 0.05) -> None:
        self.url = url
        self.every_s = every_s
        self.statuses: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                status = get(self.url, timeout=5)
            except OSError:
                status = 0
            self.statuses[status] = self.statuses.get(status, 0) + 1
            self._stop.wait(self.every_s)

    def start(self) -> Traffic:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
