"""``python -m kubestack.agents``: the agent as a lean daemon (no CLI framework loaded: the agent's footprint
is part of what it promises). Same behaviour as ``kubestack agent run``."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from kubestack.agents.settings import AgentSettings, load_agent_settings
from kubestack.errors import ConfigError, KubestackError
from kubestack.logs import configure_logging

if TYPE_CHECKING:
    from kubestack.settings import Settings


def agent_config(path: Path | None, discover: bool):
    from kubestack.agents.config import AgentConfig, load_agent_config

    config = load_agent_config(path) if path else AgentConfig()
    if discover:
        from kubestack.agents.discovery import discover_local

        known = {(t.type, t.name) for t in config.targets}
        config.targets.extend(t for t in discover_local() if (t.type, t.name) not in known)
    if config.targets:
        from kubestack.agents.discovery import discover_from

        config.targets.extend(discover_from(config.targets))
    return config


def run(config_path: Path | None, discover: bool, settings: AgentSettings | Settings) -> None:
    """Run until SIGINT/SIGTERM; without a config file, the discovered targets of this machine."""
    from kubestack.agents.lean import defer_imports

    defer_imports()
    from kubestack.agents.runtime import Agent

    agent = Agent(agent_config(config_path, discover or config_path is None), settings)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await agent.run(stop)

    asyncio.run(main())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m kubestack.agents", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="agent.yaml with the targets")
    parser.add_argument("--discover", action="store_true", help="also watch this host and local middleware")
    parser.add_argument("--settings", type=Path, help="KubeStack settings YAML (or KUBESTACK_CONFIG)")
    args = parser.parse_args(argv)
    try:
        settings = load_agent_settings(args.settings)  # without pydantic-settings: the footprint
        configure_logging(settings.log_level)
        run(args.config, args.discover, settings)
    except KubestackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2 if isinstance(exc, ConfigError) else 1)


if __name__ == "__main__":
    main()
