"""Carrying out the ZooKeeper plugin's action (declared in ``declaration.py``): the purge reads where the data lives
from ``conf``, lists the files through the target's runner (``find``), plans as ``PurgeTxnLog`` does, and deletes
through the runner (``rm``). The runner runs as a user that may write the data directories (zookeeper, or root)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from kubestack.errors import ActionError, CommandFailedError, PreconditionFailedError, TargetError
from kubestack.plugins.base import ActionOutcome, ActionSpec, CommandRunner, declared
from kubestack.plugins.zookeeper.client import FourLetterClient
from kubestack.plugins.zookeeper.parse import parse_conf, serving
from kubestack.plugins.zookeeper.purge import DataFile, parse_listing, plan

log = logging.getLogger(__name__)


async def execute(client: FourLetterClient, runner: CommandRunner, specs: Sequence[ActionSpec], action_id: str,
                  params: dict[str, Any], *, dry_run: bool = False, timeout: float = 30.0) -> ActionOutcome:
    checked = declared(specs, action_id, "ZooKeeper").check(params)
    outcome = await _purge(client, runner, checked, dry_run, timeout)
    log.info("%s %s: %s", action_id, "dry run" if dry_run else "done", outcome.output)
    return outcome


async def _list(runner: CommandRunner, directory: str, timeout: float) -> list[DataFile]:
    argv = ["find", directory, "-maxdepth", "1", "-type", "f", "(", "-name", "snapshot.*", "-o", "-name", "log.*",
            ")", "-printf", "%f\\t%s\\n"]
    try:
        return parse_listing(directory, await runner.run(argv, timeout=timeout))
    except (CommandFailedError, TargetError) as exc:
        raise PreconditionFailedError("zookeeper.purge_snapshots",
                                      [f"{directory} cannot be listed where the target's commands run: {exc}"]) from exc


async def _purge(client: FourLetterClient, runner: CommandRunner, params: dict[str, Any], dry_run: bool,
                 timeout: float) -> ActionOutcome:
    action, keep = "zookeeper.purge_snapshots", params["keep"]
    text = await client.word("conf")
    if not serving(text):
        raise PreconditionFailedError(action, [f"ZooKeeper at {client.address} does not serve: its newest snapshot "
                                               "may not be complete, nothing is deleted"])
    settings, _ = parse_conf(text)
    directories = sorted({d for d in (settings.get("dataDir"), settings.get("dataLogDir")) if d})
    if not directories:
        raise PreconditionFailedError(action, ["conf names no dataDir"])
    files = [f for d in directories for f in await _list(runner, d, timeout)]
    purge = plan(files, keep)
    snapshots = sum(f.kind == "snapshot" for f in files)
    if not purge.remove:
        raise PreconditionFailedError(action, [f"{snapshots} snapshot(s) in {', '.join(directories)}: none beyond "
                                               f"the newest {keep}, nothing to purge"])
    before = {"directories": directories, "snapshots": snapshots, "logs": sum(f.kind == "log" for f in files),
              "bytes": sum(f.size for f in files), "remove": [f.name for f in purge.remove],
              "keep": [f.name for f in purge.keep]}
    what = (f"delete {len(purge.remove)} file(s), {purge.freed} bytes ({', '.join(f.name for f in purge.remove[:10])}"
            f"{', ...' if len(purge.remove) > 10 else ''}), keeping the newest {keep} snapshot(s) and the logs after "
            f"them in {', '.join(directories)}")
    if not dry_run:
        try:
            await runner.run(["rm", "-f", "--", *(f.path for f in purge.remove)], timeout=timeout)
        except (CommandFailedError, TargetError) as exc:
            raise ActionError(f"{action}: rm failed: {exc}") from exc
    return ActionOutcome(action=action, params=params, dry_run=dry_run, before=before,
                         output=what if dry_run else f"done: {what}")
