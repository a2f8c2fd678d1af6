"""``kubestack ask "QUESTION"``: a question in plain language (English, Chinese, mixed) answered in its language
with live checks, recent incidents and runbooks (``kubestack.knowledge.ask``). Only the answer goes to standard
output: log lines (ours and the libraries') go to standard error."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from kubestack.cli.knowledge import knowledge_dir

err = Console(stderr=True)


def ask(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="e.g. 'Redis 为什么变慢了?' or 'why are MySQL queries slow?'")],
    agent_config: Annotated[Path | None, typer.Option(
        "--agent-config", help="The agent's targets to check (default: middleware answering on this host)")] = None,
    incidents: Annotated[bool, typer.Option(help="Read recent incidents from Kafka")] = True,
    timeout_s: Annotated[float, typer.Option("--timeout", min=1, help="Seconds per live check")] = 10.0,
    llm: Annotated[bool, typer.Option(help="Let the configured LLM (settings llm.provider) summarise the evidence")
                   ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable answer")] = False,
) -> None:
    """Answer a question about your middleware with live evidence and runbooks."""
    from kubestack.agents.config import load_agent_config
    from kubestack.agents.discovery import discover_local
    from kubestack.errors import IndexNotFoundError
    from kubestack.knowledge.ask import Answer, answer, kafka_incidents
    from kubestack.knowledge.explain import explain
    from kubestack.knowledge.index import build
    from kubestack.knowledge.question import understand
    from kubestack.knowledge.retrieve import KnowledgeBase
    from kubestack.knowledge.runbook import load_runbooks

    settings = ctx.obj
    targets = load_agent_config(agent_config).targets if agent_config else discover_local()
    folder = knowledge_dir(settings)
    try:
        base = KnowledgeBase.open(folder)
    except IndexNotFoundError:
        err.print(f"building the knowledge index in {folder} (once)", highlight=False)
        build(folder)
        base = KnowledgeBase.open(folder)

    def search(text: str, middleware: str | None) -> list[tuple[str, str]]:
        return [(h.id, h.title) for h in base.search(text, middleware=middleware, k=8)]

    parsed = understand(question, {t.name: t.type for t in targets})
    narrator = None
    if llm and settings.llm.provider != "none":  # imports the LLM clients only when one is configured
        from kubestack.llm import build_llm

        narrator = build_llm(settings.llm)

    async def run() -> Answer:
        source = kafka_incidents(settings.kafka, timeout_s=timeout_s) if incidents else None
        result = await answer(parsed, targets, search, load_runbooks(), source, timeout_s)
        summary, by = await explain(result, narrator)
        if summary is not None:
            result.summary, result.summary_by = summary, by
        elif narrator is not None:
            result.notes.append(f"no LLM summary: {by}")
        return result

    result = asyncio.run(run())
    typer.echo(json.dumps(result.as_dict(), ensure_ascii=False, indent=2) if as_json else result.as_text())
