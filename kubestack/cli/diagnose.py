"""``kubestack diagnose TARGET``: run a target's health checks now and print what they find.

TARGET is a target name from ``--agent-config`` (default: the middleware answering on this host, as the agent
discovers it), or a plugin name when only one target is of that kind. Exit codes follow the monitoring-plugin
convention, so scripts and cron can act on them: 0 healthy, 1 warning, 2 critical, 3 the checks could not run.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from kubestack.contract.events import Severity
from kubestack.errors import ConfigError

if TYPE_CHECKING:
    from kubestack.agents.config import TargetConfig

out = Console()
EXIT = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}
UNKNOWN = 3


def pick(targets: list[TargetConfig], wanted: str) -> TargetConfig:
    """The target named ``wanted``, else the only one of that plugin; a clear error otherwise."""
    named = [t for t in targets if t.name == wanted]
    if named:
        return named[0]
    of_kind = [t for t in targets if t.type == wanted]
    if len(of_kind) == 1:
        return of_kind[0]
    known = ", ".join(f"{t.name} ({t.type})" for t in targets) or "none"
    if of_kind:
        raise ConfigError(f"{len(of_kind)} {wanted} targets: name one of {', '.join(t.name for t in of_kind)}")
    raise ConfigError(f"no target {wanted!r}; known: {known}")


def diagnose(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="Target name, or plugin name when it has one target")],
    agent_config: Annotated[Path | None, typer.Option(
        "--agent-config", help="The agent's targets (default: middleware answering on this host)")] = None,
    timeout_s: Annotated[float, typer.Option("--timeout", min=1, help="Seconds the checks may take")] = 15.0,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Run a target's health checks now and print the findings (exit 0 ok, 1 warning, 2 critical, 3 unknown)."""
    from kubestack.agents.config import load_agent_config
    from kubestack.agents.discovery import discover_local
    from kubestack.agents.targets import check_target

    targets = load_agent_config(agent_config).targets if agent_config else discover_local()
    chosen = pick(targets, target)
    check = asyncio.run(check_target(chosen, timeout_s))
    worst = max((EXIT[f.severity] for f in check.findings), default=0)
    code = UNKNOWN if check.error else worst
    if as_json:
        typer.echo(json.dumps({"target": chosen.name, "kind": chosen.type, "error": check.error, "exit_code": code,
                               "findings": [f.model_dump(mode="json") for f in check.findings]},
                              ensure_ascii=False, indent=2))
    elif check.error:
        out.print(f"[red]{chosen.name}[/] ({chosen.type}) could not be checked: {check.error}", highlight=False)
    elif not check.findings:
        out.print(f"[green]{chosen.name}[/] ({chosen.type}): no findings", highlight=False)
    else:
        table = Table("severity", "rule", "finding", "evidence", title=f"{chosen.name} ({chosen.type})")
        for f in sorted(check.findings, key=lambda f: -EXIT[f.severity]):
            evidence = ", ".join(f"{k}={v}" for k, v in list(f.evidence.items())[:4])
            table.add_row(f.severity.value, f.rule_id, f.message, evidence)
        out.print(table)
    raise typer.Exit(code)
