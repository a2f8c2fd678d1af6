"""Logging set-up for entry points (CLI commands, the worker, the agent). Library code only uses
``logging.getLogger(__name__)``."""

from __future__ import annotations

import logging
import sys

_NOISY = ("aiokafka", "kafka", "faust.transport", "urllib3", "asyncio", "faiss", "llama_index")


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in _NOISY:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))
