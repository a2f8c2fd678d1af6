"""The local stack's targets file (``<home>/stack/targets.yaml``): private to the user even when it already existed."""

from __future__ import annotations

import os

import yaml

from kubestack.cli.stack import _targets_file
from kubestack.settings import Settings


def test_an_existing_targets_file_is_made_private_again(tmp_path) -> None:
    agent = tmp_path / "agent.yaml"
    agent.write_text(yaml.safe_dump({"targets": [{"type": "host", "name": "this-host"}]}))
    stale = tmp_path / "home" / "stack" / "targets.yaml"
    stale.parent.mkdir(parents=True)
    stale.write_text("targets: []\n")
    stale.chmod(0o644)
    old = os.umask(0o022)
    try:
        path = _targets_file(Settings(home=tmp_path / "home"), agent)
    finally:
        os.umask(old)
    assert path == stale and path.stat().st_mode & 0o777 == 0o600
    assert "this-host" in path.read_text()
