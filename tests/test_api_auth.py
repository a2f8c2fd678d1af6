"""Tokens, roles and ApiSettings, and the ``kubestack api`` commands (token, and serve printing a run token)."""

from __future__ import annotations

import signal
import time

import httpx
import pytest
import yaml
from pydantic import ValidationError

from kubestack.api.auth import TokenBook, hash_token, new_token, settings_line, token_spec
from kubestack.apisettings import ApiSettings, Role
from kubestack.api.errors import UnauthorizedError
from tests.cli import cli_env, run, start, wait_for_line
from tests.services.process import free_port


def test_roles_are_ordered() -> None:
    assert Role.ADMIN.allows(Role.OPERATOR) and Role.OPERATOR.allows(Role.OPERATOR)
    assert not Role.VIEWER.allows(Role.OPERATOR) and not Role.OPERATOR.allows(Role.ADMIN)


def test_token_book_authenticates_by_hash() -> None:
    secret = new_token()
    book = TokenBook([token_spec(secret, "otto", Role.OPERATOR, "acme")])
    who = book.authenticate(f"Bearer {secret}")
    assert (who.name, who.role, who.tenant) == ("otto", Role.OPERATOR, "acme")
    assert who.sees("acme") and not who.sees("globex")
    for header, message in ((None, "missing Authorization"), (f"Basic {secret}", "must be 'Bearer"),
                            ("Bearer guess", "unknown or revoked")):
        with pytest.raises(UnauthorizedError, match=message):
            book.authenticate(header)


def test_settings_store_only_hashes_and_refuse_mistakes() -> None:
    secret = new_token()
    spec = token_spec(secret, "ada", Role.ADMIN)
    assert spec.sha256 == hash_token(secret) and secret not in spec.model_dump_json()
    with pytest.raises(ValidationError, match="Extra inputs"):
        ApiSettings(tokens=[], tokenz=[])
    with pytest.raises(ValidationError, match="repeated: ada"):
        ApiSettings(tokens=[spec, spec])
    with pytest.raises(ValidationError, match="pattern"):
        ApiSettings(tokens=[{"name": "x", "role": "admin", "sha256": "not-hex"}])
    with pytest.raises(ValidationError, match="viewer"):
        ApiSettings(tokens=[{"name": "x", "role": "root", "sha256": "a" * 64}])


def test_settings_line_is_yaml_that_api_settings_accept() -> None:
    spec = token_spec(new_token(), "vera", Role.VIEWER, "acme")
    loaded = yaml.safe_load(settings_line(spec))
    assert ApiSettings(tokens=loaded).tokens == [spec]


def test_token_command_prints_a_token_and_the_line_that_enables_it() -> None:
    done = run("api", "token", "--role", "operator", "--name", "otto", "--tenant", "acme")
    assert done.returncode == 0, done.stderr
    secret, *rest = done.stdout.splitlines()
    config = yaml.safe_load("\n".join(rest))
    (entry,) = config["api"]["tokens"]
    assert entry == {"name": "otto", "role": "operator", "tenant": "acme", "sha256": hash_token(secret)}
    bad = run("api", "token", "--role", "root", "--name", "x")
    assert bad.returncode == 2 and "root" in bad.stderr


@pytest.mark.kafka
def test_serve_without_tokens_prints_an_admin_token_for_the_run(kafka_bootstrap: str, tmp_path) -> None:
    port = free_port()
    env = cli_env(KUBESTACK_KAFKA_BOOTSTRAP=kafka_bootstrap, KUBESTACK_HOME=str(tmp_path),
                  KUBESTACK_KAFKA__TOPIC_PREFIX=f"test.serve.{port}.")
    proc = start("api", "serve", "--port", str(port), env=env)
    lines: list[str] = []
    try:
        assert wait_for_line(proc, "admin token for this run", lines), "".join(lines)
        token = lines[-1].rsplit(" ", 1)[1].strip()
        assert f"http://127.0.0.1:{port}/" in "".join(lines)
        for _ in range(100):
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/api/v1/me",
                                     headers={"Authorization": f"Bearer {token}"}, timeout=2)
                break
            except httpx.TransportError:  # printed before uvicorn binds
                time.sleep(0.2)
        assert response.json() == {"name": "admin", "role": "admin", "tenant": None}
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=30)
    assert token not in rest  # printed once, never logged afterwards
    assert (tmp_path / "api" / "readmodel.sqlite3").is_file()
