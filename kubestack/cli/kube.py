"""``kubestack kube``: the local Kubernetes control plane (etcd, kube-apiserver, controller manager, scheduler)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from kubestack.deploy.kube.launcher import LocalKube
    from kubestack.settings import Settings

app = typer.Typer(help="A local Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager, "
                       "kube-scheduler; no kubelet) built from source by `make setup`, for development and tests.",
                  no_args_is_help=True)
out = Console()


def _kube(ctx: typer.Context) -> LocalKube:
    from kubestack.deploy.kube.launcher import LocalKube

    settings: Settings = ctx.obj
    return LocalKube(settings.local_kube, settings.home)


@app.command()
def up(ctx: typer.Context) -> None:
    """Start what is not running yet (etcd, kube-apiserver, controller manager, scheduler); wait until ready."""
    kube = _kube(ctx)
    with out.status(f"starting Kubernetes on {kube.server}..."):
        status = kube.up()
    out.print(f"[green]Kubernetes {status.version} up[/] on {status.server} (home {status.home})")
    out.print(f"export KUBECONFIG={status.kubeconfig}", highlight=False, soft_wrap=True)


@app.command()
def down(ctx: typer.Context) -> None:
    """Stop the scheduler, the controller manager, the API server and etcd."""
    if _kube(ctx).stop():
        out.print("[green]Kubernetes stopped[/]")
    else:
        out.print("Kubernetes was not running")


@app.command()
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Is the local API server running and answering? Exit code 1 when it is not."""
    kube = _kube(ctx)
    state = kube.status()
    if as_json:
        typer.echo(json.dumps(asdict(state) | {"bin_dir": str(kube.bin_dir)}, default=str, indent=2))
    elif not state.running:
        out.print(f"Kubernetes is [red]not running[/] (home {state.home}, binaries {kube.bin_dir})")
    elif state.problem:
        out.print(f"Kubernetes on {state.server}: [red]{state.problem}[/]")
    else:
        pids = ", ".join(f"{name} {pid}" for name, pid in state.pids.items() if pid)
        out.print(f"Kubernetes {state.version} [green]up[/] on {state.server}: {pids}; kubeconfig {state.kubeconfig}")
    if not state.running or state.problem:
        raise typer.Exit(1)
