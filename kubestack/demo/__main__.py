"""``python -m kubestack.demo {app,consumer,load} --config demo.json``: one part of the demo in the foreground."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from kubestack.demo.config import DemoConfig
from kubestack.errors import ConfigError

PARTS = ("app", "consumer", "load")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kubestack.demo", description=__doc__)
    parser.add_argument("part", choices=PARTS)
    parser.add_argument("--config", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    try:
        config = DemoConfig.load(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.part == "app":
        from kubestack.demo.app import serve
    elif args.part == "consumer":
        from kubestack.demo.consumer import serve
    else:
        from kubestack.demo.load import serve
    try:
        serve(config)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
