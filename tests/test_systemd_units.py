"""The bare-metal units (deploy/systemd) as systemd itself reads them: ``systemd-analyze verify`` must say nothing at
all (it exits 0 on unknown keys and bad values, only warning, so any output fails), ``systemd-analyze security``
scores their sandboxing, and ``systemd-sysusers`` accepts the user they run as."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).parent.parent / "deploy" / "systemd"
SERVICES = sorted(UNITS.glob("*.service"))
INSTALLED = "/opt/kubestack/bin/kubestack"
MAX_EXPOSURE = 2.5
"""systemd-analyze's 0 (locked down) .. 10 (unprotected) scale; below 3 it calls the sandbox OK."""

def _as_installed_here(unit: Path, into: Path) -> Path:
    """The unit with ExecStart pointing at this checkout's ``kubestack`` (verify checks the binary exists)."""
    here = Path(sys.executable).parent / "kubestack"
    assert here.is_file(), f"{here} missing: the project is not installed in this venv"
    copy = into / unit.name
    copy.write_text(unit.read_text().replace(INSTALLED, str(here)))
    return copy


def _verify(units: list[Path]) -> str:
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", *map(str, units)], capture_output=True,
                            text=True, timeout=60)
    return (result.stdout + result.stderr).strip() + ("" if result.returncode == 0 else f"\nexit {result.returncode}")


def test_the_units_are_there() -> None:
    assert [u.name for u in SERVICES] == ["kubestack-agent.service", "kubestack-api.service",
                                          "kubestack-worker.service"]
    for unit in SERVICES:
        assert f"ExecStart={INSTALLED} " in unit.read_text(), unit.name


def test_systemd_accepts_every_unit_without_a_warning(tmp_path: Path) -> None:
    units = [_as_installed_here(u, tmp_path) for u in SERVICES]
    assert _verify(units) == ""


def test_verify_as_used_here_does_catch_a_broken_unit(tmp_path: Path) -> None:
    """The check above would pass vacuously if verify's warnings went unseen: a typo and a bad value must show."""
    unit = _as_installed_here(UNITS / "kubestack-agent.service", tmp_path)
    text = unit.read_text().replace("ProtectSystem=strict", "ProtectSystm=strict").replace(
        "Restart=on-failure", "Restart=sometimes")
    unit.write_text(text)
    said = _verify([unit])
    assert "Unknown key 'ProtectSystm'" in said and "Failed to parse service restart" in said


@pytest.mark.parametrize("unit", SERVICES, ids=lambda u: u.stem)
def test_every_unit_is_sandboxed(unit: Path, tmp_path: Path) -> None:
    text = unit.read_text()
    for directive in ("NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/var/lib/kubestack",
                      "StateDirectory=kubestack", "User=kubestack", "Restart=on-failure", "CapabilityBoundingSet=\n",
                      "PrivateTmp=yes", "SystemCallFilter=@system-service"):
        assert directive in text, f"{unit.name} lacks {directive.strip()}"
    result = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager",
                             str(_as_installed_here(unit, tmp_path))], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    exposure = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)
    assert exposure and float(exposure.group(1)) <= MAX_EXPOSURE, result.stdout[-400:]


def test_the_agent_may_read_the_logs_and_no_service_gets_a_capability() -> None:
    agent = (UNITS / "kubestack-agent.service").read_text()
    assert "SupplementaryGroups=adm systemd-journal" in agent
    assert "ProtectProc=invisible" not in agent.replace("ProtectProc=invisible and", ""), \
        "the host plugin reads every middleware process under /proc"
    for unit in SERVICES:
        assert "AmbientCapabilities=\n" in unit.read_text()


def test_sysusers_accepts_the_user(tmp_path: Path) -> None:
    conf = UNITS / "kubestack.sysusers.conf"
    result = subprocess.run(["systemd-sysusers", "--dry-run", str(conf)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert not re.search(r"(?i)failed|invalid|unknown", result.stdout + result.stderr), result.stderr
