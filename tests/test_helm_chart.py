"""The Helm chart (deploy/helm/kubestack), rendered by helm itself (built from source with the control plane) and
validated by the real API server: ``helm lint``, every rendered object created with ``dryRun=All`` and
``fieldValidation=Strict`` (admission, defaulting, schema and unknown-field checks; no warnings either), the
settings and agent configs it renders as the programs read them, and its RBAC: a token of the chart's executor
ServiceAccount may run every Kubernetes action and is denied what the chart did not grant."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
import yaml
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient

from kubestack.agents.config import load_agent_config
from kubestack.approval import DecisionKeys
from kubestack.contract.topics import AUDIT, HEALTH, INCIDENTS, LOGS, METRICS
from kubestack.deploy.kube.binaries import HELM, binary
from kubestack.errors import ActionDeniedError
from kubestack.plugins.kubernetes import actions
from kubestack.plugins.kubernetes.actions import ACTIONS, EXECUTOR_RULES, NODE_RULES, execute
from kubestack.plugins.kubernetes.config import KubernetesConfig
from kubestack.settings import load_settings
from tests.services.kubernetes import KubeCluster

CHART = Path(__file__).parent.parent / "deploy" / "helm" / "kubestack"
BOOTSTRAP = {"kafka": {"bootstrap": "kafka-0.kafka:9092,kafka-1.kafka:9092"}}
HASH = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
CHANNELS = {  # the other channels (kubestack/notifysettings.py): inline credentials, and existing Secrets
    "teams": {"webhookUrl": "https://prod-01.westeurope.logic.azure.com/workflows/w/triggers/manual/paths/invoke"
                            "?api-version=2016-06-01&sig=teams-sig"},
    "opsgenie": {"existingSecret": "opsgenie", "apiKeyKey": "key", "region": "eu"},
    "email": {"host": "smtp.example.com", "port": 2587, "recipients": ["ops@example.com"], "sender": "ks@example.com",
              "username": "kubestack", "password": "smtp-pw"},
    "feishu": {"webhookUrl": "https://open.feishu.cn/open-apis/bot/v2/hook/fs-token", "secret": "fs-sign"},
    "dingtalk": {"existingSecret": "dingtalk", "webhookUrlKey": "url", "secretKey": "sign"},
    "wecom": {"webhookUrl": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=wecom-key"},
}
FULL = {
    "clusterName": "prod-eu",
    "kafka": {"bootstrap": "kafka.example.net:9093", "topicPrefix": "staging.", "replicationFactor": 3,
              "minInsyncReplicas": 2, "partitions": {"metrics": 32, "logs": 16},
              "tls": {"enabled": True, "existingSecret": "kafka-ca", "certKey": "tls.crt", "keyKey": "tls.key"},
              "sasl": {"mechanism": "SCRAM-SHA-512", "username": "kubestack", "password": "s3cret",
                       "components": {"worker": {"username": "kubestack-worker", "password": "w0rker"}}}},
    "api": {"tokens": [{"name": "alice", "role": "admin", "sha256": HASH}], "pdb": {"enabled": True}},
    "notify": {"slack": {"webhookUrl": "https://hooks.slack.com/services/T/B/X", "signingSecret": "sign-me"},
               "pagerduty": {"existingSecret": "pagerduty", "routingKeyKey": "key"},
               "webhooks": [{"name": "ops", "url": "https://ops.example.com/hook", "secret": "hmac-key"}],
               **CHANNELS},
    "llm": {"provider": "openai", "model": "qwen2.5", "baseUrl": "http://llm:8000/v1", "apiKey": "sk-test"},
    "worker": {"replicas": 6, "partitions": 6, "pdb": {"enabled": True}},
    "agent": {"runAsRoot": True, "targets": [{"type": "redis", "name": "node-cache", "config": {"port": 6379}}]},
    "clusterAgent": {"config": {"thresholds": {"restarts": 5}}, "persistence": {"enabled": True, "size": "2Gi"}},
    "settings": {"worker": {"anomaly_threshold": 0.8}},
}
EXISTING = {"pagerduty": {"key": "0123456789abcdef0123456789abcdef"}, "opsgenie": {"key": "og-existing-key"},
            "dingtalk": {"url": "https://oapi.dingtalk.com/robot/send?access_token=ding-token", "sign": "SECding"}}
"""What the Secrets the values name (but the chart does not make) hold, for reading the settings back."""


def helm(*args: str, home: Path) -> subprocess.CompletedProcess:
    """helm with its cache, config and data under ``home`` (nothing of the user's is read or written)."""
    env = {**os.environ, "HELM_CACHE_HOME": str(home / "helm-cache"), "HELM_CONFIG_HOME": str(home / "helm-config"),
           "HELM_DATA_HOME": str(home / "helm-data")}
    return subprocess.run([str(binary(HELM)), *args], capture_output=True, text=True, timeout=120, env=env)


def render(values: dict, tmp_path: Path, *, namespace: str = "kubestack", release: str = "ks") -> list[dict]:
    file = tmp_path / f"values-{uuid.uuid4().hex[:6]}.yaml"
    file.write_text(yaml.safe_dump(values))
    result = helm("template", release, str(CHART), "--namespace", namespace, "-f", str(file), home=tmp_path)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def one(docs: list[dict], kind: str, suffix: str = "") -> dict:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(suffix)]
    assert len(found) == 1, f"{kind} *{suffix}: {[d['metadata']['name'] for d in found]}"
    return found[0]


def triples(rules: list[dict] | tuple[dict, ...]) -> set[tuple[str, str, str]]:
    return {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}


# --- helm itself -----------------------------------------------------------------------------------------


def test_helm_lint_passes_strict(tmp_path: Path) -> None:
    for values in (BOOTSTRAP, FULL):
        file = tmp_path / "values.yaml"
        file.write_text(yaml.safe_dump(values))
        result = helm("lint", "--strict", str(CHART), "-f", str(file), home=tmp_path)
        assert result.returncode == 0 and "0 chart(s) failed" in result.stdout, result.stdout + result.stderr
        assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout, result.stdout


@pytest.mark.parametrize("values, says", [
    ({}, "kafka.bootstrap is required"),
    ({**BOOTSTRAP, "worker": {"replicas": 5}}, "worker.replicas (5) is above worker.partitions (4)"),
    ({"kafka": {"bootstrap": "k:9092", "sasl": {"mechanism": "PLAIN", "username": "u"}}},
     "kafka.sasl.mechanism needs kafka.sasl.password or kafka.sasl.existingSecret"),
    ({**BOOTSTRAP, "llm": {"provider": "ollama"}}, "llm.model is required"),
    ({**BOOTSTRAP, "notify": {"email": {"host": "smtp.example.com"}}}, "notify.email.recipients is required"),
    ({**BOOTSTRAP, "notify": {"email": {"host": "smtp.example.com", "recipients": ["a@b.c"], "password": "pw"}}},
     "notify.email.password (or existingSecret) needs notify.email.username"),
])
def test_values_that_cannot_work_are_refused_when_rendering(values: dict, says: str, tmp_path: Path) -> None:
    file = tmp_path / "values.yaml"
    file.write_text(yaml.safe_dump(values))
    result = helm("template", "ks", str(CHART), "-f", str(file), home=tmp_path)
    assert result.returncode != 0 and says in result.stderr, result.stderr


def test_what_the_chart_runs(tmp_path: Path) -> None:
    docs = render(BOOTSTRAP, tmp_path)
    agent = one(docs, "DaemonSet", "-agent")["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m for m in agent["containers"][0]["volumeMounts"]}
    assert mounts["/var/log"]["readOnly"] and mounts["/host/proc"]["readOnly"]
    assert {v["name"]: v["hostPath"]["path"] for v in agent["volumes"] if "hostPath" in v} == {
        "home": "/var/lib/kubestack/agent", "varlog": "/var/log", "proc": "/proc"}
    assert agent["automountServiceAccountToken"] is False and agent["securityContext"]["runAsNonRoot"] is True
    for kind, suffix in (("DaemonSet", "-agent"), ("Deployment", "-worker"), ("Deployment", "-api"),
                         ("Deployment", "-cluster-agent")):
        pod = one(docs, kind, suffix)["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                                "capabilities": {"drop": ["ALL"]}}, suffix
        assert container["resources"]["requests"] and container["resources"]["limits"]["memory"], suffix
        assert pod["securityContext"]["runAsUser"] == 10001 and pod["securityContext"]["runAsNonRoot"], suffix
    worker = one(docs, "Deployment", "-worker")["spec"]["template"]["spec"]
    assert worker["serviceAccountName"] == "ks-kubestack-executor" and worker["automountServiceAccountToken"]
    assert one(docs, "Deployment", "-api")["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    assert one(docs, "Service", "-api")["spec"]["ports"][0]["port"] == 8080
    assert not [d for d in docs if d["kind"] in ("PodDisruptionBudget", "PersistentVolumeClaim")], "none asked"
    assert list(one(docs, "Secret")["data"]) == ["decision-keys.json"], "only the decision key ring it made"
    cluster_agent = one(docs, "Deployment", "-cluster-agent")["spec"]["template"]["spec"]
    assert {v["name"]: v for v in cluster_agent["volumes"]}["home"] == {"name": "home", "emptyDir": {}}


def test_only_the_api_and_the_worker_hold_the_decision_key_ring(tmp_path: Path) -> None:
    docs = render(BOOTSTRAP, tmp_path)
    ring = base64.b64decode(one(docs, "Secret")["data"]["decision-keys.json"]).decode()
    (tmp_path / "ring.json").write_text(ring)
    assert DecisionKeys.load(tmp_path / "ring.json").current == "k1", "a ring the programs read"
    holders = set()
    for d in docs:
        if d["kind"] in ("Deployment", "DaemonSet"):
            pod = d["spec"]["template"]["spec"]
            volumes = {v["name"]: v for v in pod["volumes"]}
            if "decision-keys" in volumes:
                holders.add(d["metadata"]["name"])
                assert volumes["decision-keys"]["secret"]["defaultMode"] == 0o440
                container = pod["containers"][0]
                assert {"name": "decision-keys", "mountPath": "/etc/kubestack-keys", "readOnly": True} in \
                    container["volumeMounts"]
                assert {"name": "KUBESTACK_REMEDIATION__DECISION_KEYS",
                        "value": "/etc/kubestack-keys/decision-keys.json"} in container["env"]
    assert holders == {"ks-kubestack-api", "ks-kubestack-worker"}, "never an agent"
    given = render({**BOOTSTRAP, "remediation": {"decisionKeys": ring}}, tmp_path)
    assert base64.b64decode(one(given, "Secret")["data"]["decision-keys.json"]).decode() == ring
    existing = render({**BOOTSTRAP, "remediation": {"decisionKeysExistingSecret": "keys", "decisionKeysKey": "r"}},
                      tmp_path)
    assert not [d for d in existing if d["kind"] == "Secret"]
    worker = one(existing, "Deployment", "-worker")["spec"]["template"]["spec"]
    assert {v["name"]: v for v in worker["volumes"]}["decision-keys"]["secret"]["secretName"] == "keys"


def test_the_cluster_agent_can_keep_its_spool_on_a_volume(tmp_path: Path) -> None:
    docs = render(FULL, tmp_path)
    claim = one(docs, "PersistentVolumeClaim", "-cluster-agent")
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi" and "storageClassName" not in claim["spec"]
    pod = one(docs, "Deployment", "-cluster-agent")["spec"]["template"]["spec"]
    home = {v["name"]: v for v in pod["volumes"]}["home"]
    assert home["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]


def test_the_executor_role_is_exactly_what_the_actions_request(tmp_path: Path) -> None:
    docs = render(BOOTSTRAP, tmp_path, namespace="ops")
    assert triples(one(docs, "ClusterRole", "-executor")["rules"]) == triples(EXECUTOR_RULES)
    assert triples(one(docs, "ClusterRole", "-executor-nodes")["rules"]) == triples(NODE_RULES)
    limited = render({**BOOTSTRAP, "remediation": {"namespaces": ["shop", "payments"], "nodeActions": False}},
                     tmp_path, namespace="ops")
    bindings = [d for d in limited if d["kind"] == "RoleBinding" and d["metadata"]["name"].endswith("-executor")]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["payments", "shop"]
    assert not [d for d in limited if d["kind"] == "ClusterRoleBinding"
                and d["metadata"]["name"] == "ops-ks-kubestack-executor"], "no cluster-wide grant"
    assert triples(one(limited, "ClusterRole", "-executor-nodes")["rules"]) == {("", "nodes", "get")}
    off = render({**BOOTSTRAP, "remediation": {"kubernetesActions": False}}, tmp_path)
    assert not [d for d in off if "executor" in d["metadata"]["name"] and d["kind"] != "ServiceAccount"]
    assert "kubernetes" not in one(off, "ConfigMap")["data"]["targets.yaml"]


def _env(container: dict, docs: list[dict]) -> dict[str, str]:
    """A container's environment with its secretKeyRefs read from the chart's Secret (or EXISTING)."""
    secrets = {d["metadata"]["name"]: {k: base64.b64decode(v).decode() for k, v in d["data"].items()}
               for d in docs if d["kind"] == "Secret"} | EXISTING
    out = {}
    for var in container["env"]:
        ref = (var.get("valueFrom") or {}).get("secretKeyRef")
        out[var["name"]] = secrets[ref["name"]][ref["key"]] if ref else var["value"]
    return out


def test_the_channels_credentials_reach_the_worker_from_secrets_only(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Teams, Opsgenie, e-mail, Feishu, DingTalk and WeCom: each credential is kept in the chart's Secret (or read
    from the existing one named) and reaches only the worker, as the variable its settings read; no credential is in
    the ConfigMap or in a plain environment value."""
    docs = render(FULL, tmp_path)
    files = one(docs, "ConfigMap")["data"]
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    credentials = ["teams-sig", "smtp-pw", "fs-token", "fs-sign", "wecom-key"]
    made = {k: base64.b64decode(v).decode() for k, v in one(docs, "Secret")["data"].items()}
    assert {k for k, v in made.items() if any(c in v for c in credentials)} == {
        "teams-webhook-url", "smtp-password", "feishu-webhook-url", "feishu-secret", "wecom-webhook-url"}
    for d in docs:
        if d["kind"] in ("Deployment", "DaemonSet"):
            container = d["spec"]["template"]["spec"]["containers"][0]
            plain = " ".join(str(v.get("value")) for v in container.get("env", []))
            assert not [c for c in credentials if c in plain], d["metadata"]["name"]
            channel_vars = [v["name"] for v in container.get("env", []) if v["name"].startswith("KUBESTACK_NOTIFY__")
                            and not v["name"].startswith(("KUBESTACK_NOTIFY__SLACK", "KUBESTACK_NOTIFY__PAGERDUTY",
                                                          "KUBESTACK_NOTIFY__WEBHOOKS"))]
            assert bool(channel_vars) == d["metadata"]["name"].endswith("-worker"), d["metadata"]["name"]
    assert not [c for c in credentials + ["og-existing-key", "ding-token", "SECding"]
                if any(c in text for text in files.values())]
    for name in [n for n in os.environ if n.startswith("KUBESTACK_")]:
        monkeypatch.delenv(name)
    for name, value in _env(one(docs, "Deployment", "-worker")["spec"]["template"]["spec"]["containers"][0],
                            docs).items():
        monkeypatch.setenv(name, value)
    notify = load_settings(tmp_path / "settings.yaml").notify
    assert {"teams", "opsgenie", "email", "feishu", "dingtalk", "wecom"} <= set(notify.channel_names())
    assert notify.teams.webhook_url.get_secret_value().endswith("sig=teams-sig")
    assert (notify.opsgenie.api_key.get_secret_value(), notify.opsgenie.region) == ("og-existing-key", "eu")
    email = notify.email
    assert (email.host, email.port, email.recipients, email.sender, email.username) == (
        "smtp.example.com", 2587, ["ops@example.com"], "ks@example.com", "kubestack")
    assert email.password.get_secret_value() == "smtp-pw"
    assert notify.feishu.webhook_url.get_secret_value().endswith("/fs-token")
    assert notify.feishu.secret.get_secret_value() == "fs-sign"
    assert notify.dingtalk.webhook_url.get_secret_value() == EXISTING["dingtalk"]["url"]
    assert notify.dingtalk.secret.get_secret_value() == "SECding"
    assert notify.wecom.webhook_url.get_secret_value().endswith("key=wecom-key")


def test_each_component_logs_in_to_kafka_as_itself_and_holds_no_other_password(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """kafka.sasl.components: the agents, the worker and the API each get their own login (the cluster's ACLs let
    each write only its own topics), and no pod holds another component's password or a shared one."""
    logins = {name: {"username": f"kubestack-{name}", "password": f"pw-{name}"} for name in ("agent", "worker")}
    logins["api"] = {"username": "kubestack-api", "existingSecret": "kafka-api", "passwordKey": "pw"}
    values = {"kafka": {"bootstrap": "k:9093", "sasl": {"mechanism": "SCRAM-SHA-512", "components": logins}}}
    docs = render(values, tmp_path)
    (tmp_path / "settings.yaml").write_text(one(docs, "ConfigMap")["data"]["settings.yaml"])
    for name in [n for n in os.environ if n.startswith("KUBESTACK_")]:
        monkeypatch.delenv(name)
    existing = {"kafka-api": {"pw": "pw-api"}}
    for kind, suffix, component in (("DaemonSet", "-agent", "agent"), ("Deployment", "-cluster-agent", "agent"),
                                    ("Deployment", "-worker", "worker"), ("Deployment", "-api", "api")):
        container = one(docs, kind, suffix)["spec"]["template"]["spec"]["containers"][0]
        with monkeypatch.context() as scoped:
            scoped.setattr(sys.modules[__name__], "EXISTING", EXISTING | existing)
            env = _env(container, docs)
            for name, value in env.items():
                scoped.setenv(name, value)
            kafka = load_settings(tmp_path / "settings.yaml").kafka
        assert [v for v in env if "KAFKA" in v] == [f"KUBESTACK_KAFKA__COMPONENTS__{component.upper()}__USERNAME",
                                                   f"KUBESTACK_KAFKA__COMPONENTS__{component.upper()}__PASSWORD"]
        own = kafka.for_component(component).credentials
        assert (own.username, own.password.get_secret_value()) == (f"kubestack-{component}", f"pw-{component}")
        assert list(kafka.components) == [component] and kafka.sasl_username is None, suffix
    assert sorted(one(docs, "Secret")["data"]) == ["decision-keys.json", "kafka-agent-password",
                                                   "kafka-worker-password"]
    for wrong, says in (({"broker": {"username": "b", "password": "p"}}, "the components are agent, worker and api"),
                        ({"agent": {"username": "a"}}, "kafka.sasl.components.agent needs a username and a password")):
        file = tmp_path / "wrong.yaml"
        file.write_text(yaml.safe_dump({"kafka": {"bootstrap": "k:9093",
                                                  "sasl": {"mechanism": "PLAIN", "components": wrong}}}))
        result = helm("template", "ks", str(CHART), "-f", str(file), home=tmp_path)
        assert result.returncode != 0 and says in result.stderr, result.stderr


def test_the_programs_read_the_settings_the_chart_renders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = render(FULL, tmp_path)
    files = one(docs, "ConfigMap")["data"]
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    for name in [n for n in os.environ if n.startswith("KUBESTACK_")]:
        monkeypatch.delenv(name)
    for suffix, kind in (("-worker", "Deployment"), ("-api", "Deployment")):
        env = _env(one(docs, kind, suffix)["spec"]["template"]["spec"]["containers"][0], docs)
        with monkeypatch.context() as scoped:
            for name, value in env.items():
                scoped.setenv(name, value)
            settings = load_settings(tmp_path / "settings.yaml")
        assert settings.kafka.bootstrap_servers == ["kafka.example.net:9093"]
        assert settings.kafka.topic_prefix == "staging."
        assert (settings.kafka.security_protocol, settings.kafka.sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-512")
        assert settings.kafka.sasl_password.get_secret_value() == "s3cret"
        assert list(settings.kafka.components) == (["worker"] if suffix == "-worker" else [])
        assert str(settings.kafka.ssl_cafile) == "/etc/kubestack-tls/kafka/ca.crt"
        # a group of six workers: every partitioned topic and the signals get six, metrics and logs more
        assert (settings.kafka.replication_factor, settings.kafka.min_insync_replicas) == (3, 2)
        assert [settings.kafka.partitions_of(s) for s in (METRICS, LOGS, HEALTH, INCIDENTS, AUDIT)] == [32, 16, 6, 6, 1]
        assert settings.worker.signal_partitions == 6
        assert str(settings.home) == "/var/lib/kubestack" and settings.worker.anomaly_threshold == 0.8
        assert str(settings.remediation.decision_keys) == "/etc/kubestack-keys/decision-keys.json"
        if suffix == "-worker":
            assert settings.notify.slack.webhook_url.get_secret_value() == "https://hooks.slack.com/services/T/B/X"
            assert settings.notify.pagerduty.routing_key.get_secret_value() == EXISTING["pagerduty"]["key"]
            assert settings.llm.api_key.get_secret_value() == "sk-test" and settings.llm.model == "qwen2.5"
            [hook] = settings.notify.webhooks
            assert (hook.name, hook.url, hook.secret.get_secret_value()) == ("ops", "https://ops.example.com/hook",
                                                                             "hmac-key")
            assert str(settings.remediation.targets) == "/etc/kubestack/targets.yaml"
        else:
            assert [(t.name, t.role.value, t.sha256) for t in settings.api.tokens] == [("alice", "admin", HASH)]
            assert settings.api.slack_signing_secret.get_secret_value() == "sign-me"
            assert (settings.api.host, settings.api.port) == ("0.0.0.0", 8080)
    node_agent = load_agent_config(tmp_path / "agent.yaml")
    assert node_agent.agent.cluster == "prod-eu" and node_agent.agent.metrics_listen == "0.0.0.0:9464"
    assert [t.name for t in node_agent.targets] == ["node-cache"]
    for name in ("cluster-agent.yaml", "targets.yaml"):
        [target] = load_agent_config(tmp_path / name).targets
        config = KubernetesConfig.model_validate(target.config)
        assert (target.type, target.name, config.in_cluster, config.cluster) == ("kubernetes", "prod-eu", True,
                                                                                 "prod-eu")
    assert KubernetesConfig.model_validate(load_agent_config(tmp_path / "cluster-agent.yaml").targets[0].config
                                           ).thresholds.restarts == 5


# --- against the API server -----------------------------------------------------------------------------


def _request(api: kubernetes.client.ApiClient, method: str, path: str, body: Any = None,
             query: list | None = None) -> tuple[int, dict, str | None]:
    request = api.param_serialize(method=method, resource_path=path, query_params=query or [], body=body,
                                  header_params={"Accept": "application/json", "Content-Type": "application/json"},
                                  auth_settings=["BearerToken"])
    response = api.call_api(*request)
    data = response.read()
    return response.status, (json.loads(data) if data else {}), response.getheader("Warning")


def _path(api: kubernetes.client.ApiClient, obj: dict, namespace: str) -> str:
    resource = DynamicClient(api).resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    return resource.path(namespace=(obj["metadata"].get("namespace") or namespace) if resource.namespaced else None)



@pytest.fixture()
def admin(kube_cluster: KubeCluster) -> Iterator[kubernetes.client.ApiClient]:
    with kube_cluster.api_client() as api:
        yield api


@pytest.mark.kubernetes
@pytest.mark.parametrize("values", [BOOTSTRAP, FULL], ids=["defaults", "everything"])
def test_every_rendered_object_passes_a_server_side_dry_run(values: dict, admin, kube_namespace: str,
                                                            tmp_path: Path) -> None:
    other = f"{kube_namespace}-b"
    core = kubernetes.client.CoreV1Api(admin)
    core.create_namespace({"metadata": {"name": other}})
    try:
        scoped = {**values, "remediation": {"namespaces": [kube_namespace, other]},
                  "clusterAgent": {**values.get("clusterAgent", {}), "namespaces": [other]}}
        docs = render(scoped, tmp_path, namespace=kube_namespace)
        assert len(docs) >= 18
        for obj in docs:
            status, answer, warning = _request(admin, "POST", _path(admin, obj, kube_namespace), obj,
                                               [("dryRun", "All"), ("fieldValidation", "Strict")])
            assert status == 201, f"{obj['kind']} {obj['metadata']['name']}: {answer.get('message')}"
            assert warning is None, f"{obj['kind']} {obj['metadata']['name']}: {warning}"
            assert answer["metadata"].get("uid"), "the server built the whole object"
        names = {d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount"}
        left = {sa.metadata.name for sa in core.list_namespaced_service_account(kube_namespace).items}
        assert not names & left, "a dry run stores nothing"
    finally:
        core.delete_namespace(other)


@pytest.mark.kubernetes
def test_the_dry_run_as_used_here_refuses_a_misspelt_field(admin, kube_namespace: str, tmp_path: Path) -> None:
    """The check above would pass vacuously if the server dropped what it does not know: a typo must be an error."""
    worker = one(render(BOOTSTRAP, tmp_path, namespace=kube_namespace), "Deployment", "-worker")
    worker["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesytem"] = True
    status, answer, _ = _request(admin, "POST", _path(admin, worker, kube_namespace), worker,
                                 [("dryRun", "All"), ("fieldValidation", "Strict")])
    assert status == 400 and 'unknown field "spec.template.spec.containers[0].securityContext.readOnlyRootFilesytem"' \
        in answer["message"], answer


class Installed:
    """The chart's ServiceAccounts and RBAC created for real (cluster-scoped objects removed afterwards)."""

    KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")

    def __init__(self, cluster: KubeCluster, namespace: str, docs: list[dict]) -> None:
        self.cluster, self.namespace = cluster, namespace
        self.objects = [d for d in docs if d["kind"] in self.KINDS]

    def __enter__(self) -> Installed:
        with self.cluster.api_client() as api:
            for obj in self.objects:
                status, answer, _ = _request(api, "POST", _path(api, obj, self.namespace), obj)
                assert status == 201, answer.get("message")
        return self

    def __exit__(self, *exc: object) -> None:
        with self.cluster.api_client() as api:
            for obj in self.objects:
                if obj["kind"].startswith("Cluster"):
                    _request(api, "DELETE", f"{_path(api, obj, self.namespace)}/{obj['metadata']['name']}")

    def token(self, service_account: str, allowed: dict) -> str:
        """A TokenRequest token of the chart's ServiceAccount, once RBAC's caches have its grants (``allowed``)."""
        with self.cluster.api_client() as api:
            core = kubernetes.client.CoreV1Api(api)
            request = kubernetes.client.AuthenticationV1TokenRequest(
                spec=kubernetes.client.V1TokenRequestSpec(audiences=[], expiration_seconds=600))
            token = core.create_namespaced_service_account_token(service_account, self.namespace,
                                                                 request).status.token
            review = {"spec": {"user": f"system:serviceaccount:{self.namespace}:{service_account}",
                               "groups": ["system:serviceaccounts", "system:authenticated"],
                               "resourceAttributes": allowed}}
            authz = kubernetes.client.AuthorizationV1Api(api)
            deadline = time.monotonic() + 15
            while not authz.create_subject_access_review(review).status.allowed:
                assert time.monotonic() < deadline, f"RBAC never allowed {service_account} {allowed}"
                time.sleep(0.2)
        return token


def _denied(call, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ApiException) as refused:
        call(*args, **kwargs)
    assert refused.value.status == 403, refused.value.body
    return json.loads(refused.value.body)["message"]


def _eventually(check, what: str, timeout_s: float = 30.0):
    deadline = time.monotonic() + timeout_s
    while not (result := check()):
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout_s:.0f}s"
        time.sleep(0.2)
    return result


@pytest.mark.kubernetes
async def test_the_executor_token_runs_every_action_and_nothing_else(kube_cluster: KubeCluster, admin,
                                                                     kube_namespace: str, tmp_path: Path) -> None:
    apps, core = kubernetes.client.AppsV1Api(admin), kubernetes.client.CoreV1Api(admin)
    labels = {"app": "web"}
    apps.create_namespaced_deployment(kube_namespace, {
        "metadata": {"name": "web"}, "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels}, "spec": {"containers": [{"name": "app", "image": "redis:7"}],
                                                     "nodeSelector": {"kubestack-test/none": "true"}}}}})
    core.create_namespaced_secret(kube_namespace, {"metadata": {"name": "db-password"}, "stringData": {"p": "x"}})
    node = f"node-{uuid.uuid4().hex[:8]}"
    for name in (node, f"{node}-b"):
        kube_cluster.create_node(name)
    pod = _eventually(lambda: core.list_namespaced_pod(kube_namespace).items, "the deployment's pod")[0].metadata.name
    core.patch_namespaced_pod_status(pod, kube_namespace, {"status": {"phase": "Running", "containerStatuses": [{
        "name": "app", "image": "redis:7", "imageID": "", "ready": False, "restartCount": 4,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}})
    _eventually(lambda: (apps.read_namespaced_deployment("web", kube_namespace).status.observed_generation or 0) >= 1,
                "the deployment's first rollout")
    docs = render(BOOTSTRAP, tmp_path, namespace=kube_namespace, release="rbac")
    try:
        with Installed(kube_cluster, kube_namespace, docs) as installed:
            executor = installed.token("rbac-kubestack-executor", {"verb": "patch", "group": "",
                                                                    "resource": "nodes"})
            agent = installed.token("rbac-kubestack-agent", {"verb": "watch", "group": "", "resource": "pods",
                                                              "namespace": kube_namespace})
            workload = {"kind": "deployment", "namespace": kube_namespace, "name": "web"}
            with kube_cluster.api_client(executor) as api:
                for action, params in ((actions.RESTART, workload), (actions.SCALE, {**workload, "replicas": 2}),
                                       (actions.DELETE_POD, {"namespace": kube_namespace, "name": pod}),
                                       (actions.CORDON, {"name": node})):
                    outcome = await execute(api, ACTIONS, action, params, dry_run=True)
                    assert "accepted by the API server in a dry run" in outcome.output, action
                done = await execute(api, ACTIONS, actions.CORDON, {"name": node})
                await execute(api, ACTIONS, *done.undo)
                their_apps, their_core = kubernetes.client.AppsV1Api(api), kubernetes.client.CoreV1Api(api)
                assert "cannot delete resource \"deployments\"" in _denied(
                    their_apps.delete_namespaced_deployment, "web", kube_namespace)
                assert "cannot patch resource \"secrets\"" in _denied(
                    their_core.patch_namespaced_secret, "db-password", kube_namespace, {"data": {}})
                _denied(their_core.read_namespaced_secret, "db-password", kube_namespace)
                _denied(their_core.create_namespaced_pod, kube_namespace,
                        {"metadata": {"name": "x"}, "spec": {"containers": [{"name": "x", "image": "x"}]}})
                _denied(their_core.delete_node, f"{node}-b")
                _denied(their_apps.patch_namespaced_daemon_set, "any", kube_namespace, {"metadata": {}})
            with kube_cluster.api_client(agent) as api:
                their_core = kubernetes.client.CoreV1Api(api)
                assert their_core.list_pod_for_all_namespaces(limit=1).items is not None
                assert {n.metadata.name for n in their_core.list_node().items} >= {node}
                _denied(their_core.read_namespaced_secret, "db-password", kube_namespace)
                _denied(kubernetes.client.AppsV1Api(api).patch_namespaced_deployment, "web", kube_namespace,
                        {"spec": {"replicas": 3}})
                _denied(their_core.delete_namespaced_pod, pod, kube_namespace)
        assert apps.read_namespaced_deployment("web", kube_namespace).spec.replicas == 1
        assert core.read_namespaced_pod(pod, kube_namespace).metadata.deletion_timestamp is None
        assert not core.read_node(node).spec.unschedulable
    finally:
        for name in (node, f"{node}-b"):
            core.delete_node(name)


@pytest.mark.kubernetes
async def test_namespaced_grants_keep_the_executor_in_its_namespaces(kube_cluster: KubeCluster, admin,
                                                                     kube_namespace: str, tmp_path: Path) -> None:
    outside = f"{kube_namespace}-out"
    apps, core = kubernetes.client.AppsV1Api(admin), kubernetes.client.CoreV1Api(admin)
    core.create_namespace({"metadata": {"name": outside}})
    labels = {"app": "web"}
    body = {"metadata": {"name": "web"}, "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
        "metadata": {"labels": labels}, "spec": {"containers": [{"name": "app", "image": "redis:7"}],
                                                 "nodeSelector": {"kubestack-test/none": "true"}}}}}
    try:
        for namespace in (kube_namespace, outside):
            apps.create_namespaced_deployment(namespace, body)
        for namespace in (kube_namespace, outside):
            _eventually(lambda: (apps.read_namespaced_deployment("web", namespace).status.observed_generation or 0)
                        >= 1, "the first rollout")
        docs = render({**BOOTSTRAP, "remediation": {"namespaces": [kube_namespace]}}, tmp_path,
                      namespace=kube_namespace, release="scoped")
        with Installed(kube_cluster, kube_namespace, docs) as installed:
            token = installed.token("scoped-kubestack-executor", {"verb": "patch", "group": "apps",
                                                                   "resource": "deployments",
                                                                   "namespace": kube_namespace})
            with kube_cluster.api_client(token) as api:
                inside = await execute(api, ACTIONS, actions.RESTART,
                                       {"kind": "deployment", "namespace": kube_namespace, "name": "web"})
                assert inside.output.startswith("done: restart deployment")
                with pytest.raises(ActionDeniedError, match=f"RBAC denies GET /apis/apps/v1/namespaces/{outside}"):
                    await execute(api, ACTIONS, actions.RESTART,
                                  {"kind": "deployment", "namespace": outside, "name": "web"})
        assert not (apps.read_namespaced_deployment("web", outside).spec.template.metadata.annotations or {})
    finally:
        core.delete_namespace(outside)
