"""The agent's settings: the part of ``Settings`` the agent reads (``home``, ``log_level``, ``kafka``), from the same
sources as ``kubestack.settings.load_settings`` (environment over the YAML file over defaults, the
``KUBESTACK_KAFKA_BOOTSTRAP`` shortcut strongest) but without pydantic-settings, whose import alone costs the agent
about 4.5 MB resident. The other sections of the file are not the agent's and are not read here.

Environment names are read as pydantic-settings reads them: case-insensitive, ``__`` between nested names, a value
that starts with ``{`` or ``[`` is JSON (``KUBESTACK_KAFKA='{"bootstrap": ...}'``), nested values merge into the
file's. ``tests/test_agent_settings.py`` holds the two readers to the same answers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kubestack.commonsettings import (
    BOOTSTRAP_SHORTCUT_ENV,
    CONFIG_FILE_ENV,
    ENV_NESTED_DELIMITER,
    ENV_PREFIX,
    KafkaSettings,
    LogLevel,
    default_home,
)
from kubestack.errors import ConfigError, validation_problems


class AgentSettings(BaseModel):
    """What the agent process reads of the settings."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    home: Path = Field(default_factory=default_home)
    log_level: LogLevel = "INFO"
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)


_FIELDS = frozenset(AgentSettings.model_fields)


def _merge(into: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = dict(value) if isinstance(value, Mapping) else value
    return into


def _env_value(raw: str) -> Any:
    if raw.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise ConfigError(f"invalid settings: {raw[:40]!r} is not valid JSON: {exc}") from exc
    return raw


def _from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, raw in sorted(environ.items()):
        if not name.upper().startswith(ENV_PREFIX) or name.upper() == BOOTSTRAP_SHORTCUT_ENV:
            continue
        path = name[len(ENV_PREFIX):].lower().split(ENV_NESTED_DELIMITER)
        if path[0] not in _FIELDS or not all(path):
            continue
        nested: Any = _env_value(raw)
        for key in reversed(path[1:]):
            nested = {key: nested}
        _merge(values, {path[0]: nested})
    return values


def load_agent_settings(config_file: Path | str | None = None,
                        environ: Mapping[str, str] | None = None) -> AgentSettings:
    """The agent's settings; ``ConfigError`` says which file or value is wrong."""
    environ = os.environ if environ is None else environ
    path = config_file or environ.get(CONFIG_FILE_ENV)
    if path is not None and not Path(path).is_file():
        raise ConfigError(f"config file {path} not found")
    values: dict[str, Any] = {}
    if path is not None:
        import yaml

        loaded = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"invalid settings in {path}: a mapping of sections is expected")
        values = {k: v for k, v in loaded.items() if k in _FIELDS}
    _merge(values, _from_environment(environ))
    shortcut = environ.get(BOOTSTRAP_SHORTCUT_ENV)
    if shortcut:
        _merge(values, {"kafka": {"bootstrap": shortcut}})
    try:
        return AgentSettings.model_validate(values)
    except ValidationError as exc:
        where = f" in {path}" if path else ""
        raise ConfigError(f"invalid settings{where}: {validation_problems(exc)}") from exc
