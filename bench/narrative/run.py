"""How often a model's narrative of the recorded fault incidents is accepted (``kubestack.llm.citation_problem``),
and how long each takes: wall time and, for the local server this starts, the server's CPU time.

    python -m bench.narrative.run [--structured auto|json_schema|grammar|json_object|off] [--runs 1]
                                  [--base-url URL --model NAME] [--code REF]

Without ``--base-url`` it starts llama.cpp's server (llama-cpp-python) with Gemma 3 270M, as the tests do. The
incidents are ``tests/data/narrative/*.json``: an incident and its root-cause report as the worker published
them during a run of ``tests/test_faults.py`` (eight single-resource faults). ``--code REF`` runs the narrative
code (``CODE``: the client, the prompt, the server's flags) of git commit REF instead of the checkout's, so that
two runs started side by side measure before and after in the same machine state.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

from kubestack.contract.events import Incident, RcaReport
from kubestack.knowledge.runbook import load_runbooks
from kubestack.settings import LlmSettings

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "tests" / "data" / "narrative"
TARGET_S = 10.0
CODE = {"kubestack.llm": "kubestack/llm.py", "kubestack.pipeline.narrative": "pipeline/narrative.py",
        "tests.services.llm": "tests/services/llm.py"}
"""What ``--code`` takes from another commit, in import order."""


def use_code_of(ref: str) -> None:
    """Install ``CODE`` as it is at git commit ``ref`` in ``sys.modules``, before anything imports it."""
    for name, path in CODE.items():
        source = subprocess.run(["git", "-C", str(ROOT), "show", f"{ref}:{path}"], check=True, capture_output=True,
                                text=True).stdout
        module = types.ModuleType(name)
        module.__file__ = str(ROOT / path)
        sys.modules[name] = module
        exec(compile(source, f"{ref}:{path}", "exec"), module.__dict__)  # this repository's own history


def load_cases() -> list[tuple[str, Incident, RcaReport]]:
    cases = []
    for path in sorted(CASES.glob("*.json")):
        data = json.loads(path.read_text())
        cases.append((data["fault"], Incident.model_validate(data["incident"]),
                      RcaReport.model_validate(data["report"])))
    return cases


def cpu_s(pid: int | None) -> float | None:
    """User and system CPU seconds of process ``pid`` so far (Linux)."""
    if pid is None:
        return None
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(settings: LlmSettings, runs: int, pid: int | None) -> None:
    from kubestack.llm import RULES, build_llm  # after --code
    from kubestack.pipeline.narrative import narrate

    titles = {b.id: b.meta.title for b in load_runbooks()}
    llm = build_llm(settings)
    rows, accepted, total = [], 0, 0
    for fault, incident, report in load_cases():
        for n in range(runs):
            cpu_before, started = cpu_s(pid), time.perf_counter()
            narrative, narrator = await narrate(report, incident, titles, llm)
            wall = time.perf_counter() - started
            cpu = cpu_s(pid) - cpu_before if pid is not None else None
            ok = narrator != RULES
            accepted, total = accepted + ok, total + 1
            rows.append((fault, n, ok, wall, cpu, narrative if ok else ""))
    print(f"{'incident':<26} {'run':>3} {'accepted':>8} {'wall s':>7} {'cpu s':>6}  narrative")
    for fault, n, ok, wall, cpu, narrative in rows:
        cpu_text = f"{cpu:.1f}" if cpu is not None else "-"
        print(f"{fault:<26} {n:>3} {'yes' if ok else 'no':>8} {wall:>7.1f} {cpu_text:>6}  {narrative[:160]}")
    walls = sorted(r[3] for r in rows)
    cpus = sorted(r[4] for r in rows if r[4] is not None)
    print(f"\naccepted {accepted}/{total}; wall median {walls[len(walls) // 2]:.1f}s, max {walls[-1]:.1f}s; "
          + (f"server CPU median {cpus[len(cpus) // 2]:.1f}s, max {cpus[-1]:.1f}s; " if cpus else "")
          + f"under {TARGET_S:.0f}s wall: {sum(w < TARGET_S for w in walls)}/{total}; "
          + f"structured={settings.structured}, dialect used: {', '.join(llm.dialects)}; "
          + f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--structured", default="auto",
                        choices=["auto", "json_schema", "grammar", "json_object", "off"])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--base-url")
    parser.add_argument("--model", default="gemma3-270m")
    parser.add_argument("--max-tokens", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=120.0, help="per narrative; generous, to see the time")
    parser.add_argument("--code", metavar="REF", help="the narrative code of this git commit (before/after)")
    args = parser.parse_args()
    if args.code:
        use_code_of(args.code)
    from tests.services.llm import running_llama_server  # after --code

    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    logging.getLogger("kubestack").setLevel(logging.INFO)  # why an answer was rejected
    with contextlib.ExitStack() as stack:
        base_url, pid = args.base_url, None
        if base_url is None:
            log_path = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "llama-server.log"
            server, process = stack.enter_context(running_llama_server(log_path))
            base_url, pid = server.base_url, process.proc.pid
        settings = LlmSettings(provider="openai", base_url=base_url, model=args.model, timeout_s=args.timeout,
                               max_tokens=args.max_tokens, structured=args.structured)
        asyncio.run(run(settings, args.runs, pid))
    print(f"narrative code: {args.code or 'the checkout'}")


if __name__ == "__main__":
    main()
