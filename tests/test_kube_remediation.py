"""A crash-looping pod goes through the real pipeline functions and the real API server: its finding (the
collector's rules on the pod as the server has it) becomes an incident, the root-cause stage proposes the Kubernetes
actions for it, and the remediation stage's executor carries one out through the cluster's ``kubernetes`` target,
then verifies on the pods the workload runs now."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import kubernetes.client
import pytest
import yaml

from kubestack.contract.base import ResourceRef, Source
from kubestack.contract.events import HealthReport, ResultStatus
from kubestack.errors import ActionError
from kubestack.pipeline.correlation import Correlator, signals_from_health
from kubestack.pipeline.rootcause import rank_incident_causes
from kubestack.agents.targets import TargetSet
from kubestack.pipeline.executor import carry_out
from kubestack.plugins.kubernetes import actions
from kubestack.plugins.kubernetes.config import Thresholds
from kubestack.plugins.kubernetes.pods import pod_findings
from kubestack.plugins.kubernetes.resources import pod_ref
from kubestack.plugins.registry import actions_for_kind
from kubestack.settings import RemediationSettings
from tests.services.kubernetes import KubeCluster
from tests.test_kube_actions_live import crash_looping, eventually, workload

pytestmark = pytest.mark.kubernetes

SOURCE = Source(agent="worker/test", host="test")
CLUSTER = "local"


def _targets(cluster: KubeCluster, namespace: str, folder: Path) -> TargetSet:
    """remediation.targets as an operator writes it: the cluster's target, with the executor's token."""
    token = cluster.service_account_token(namespace, "executor", rules=actions.EXECUTOR_RULES + actions.NODE_RULES,
                                          cluster_wide=True)  # as the chart grants it by default
    path = folder / "targets.yaml"
    path.write_text(yaml.safe_dump({"agent": {"name": "worker"}, "targets": [{
        "type": "kubernetes", "name": CLUSTER,
        "config": {"server": cluster.server, "token": {"value": token}, "ca_file": str(cluster.ca_file),
                   "cluster": CLUSTER}}]}))
    return TargetSet.load(path)


@pytest.fixture()
def own_node(kube_cluster: KubeCluster, kube_namespace: str):
    """A Ready node only this test's pods select (a leftover Ready node would attract other tests' pods)."""
    node = f"node-{kube_namespace}"
    kube_cluster.create_node(node, labels={"kubestack-test/node": node})
    yield node
    with kube_cluster.api_client() as api:
        kubernetes.client.CoreV1Api(api).delete_node(node)


def _crash_looping_pod(node: str, core: kubernetes.client.CoreV1Api, apps: kubernetes.client.AppsV1Api,
                       namespace: str):
    """A Deployment's pod on ``node`` (the scheduler binds it, and its replacement), reported as a kubelet reports
    a container that keeps dying."""
    apps.create_namespaced_deployment(namespace, workload("Deployment", "checkout", 1,
                                                          node_selector={"kubestack-test/node": node}))
    pod = eventually(lambda: core.list_namespaced_pod(namespace).items, "the deployment's pod")[0]
    crash_looping(core, namespace, pod.metadata.name)
    return kubernetes.client.ApiClient().sanitize_for_serialization(
        core.read_namespaced_pod(pod.metadata.name, namespace))


def _incident(pod: dict):
    """What the collector reports of the pod, through the correlator."""
    now = datetime.now(timezone.utc)
    report = HealthReport(source=SOURCE, resource=pod_ref(CLUSTER, pod), ts=now,
                          findings=pod_findings(pod, now, Thresholds()))
    correlator = Correlator("default")
    return [i for s in signals_from_health(report) for i in correlator.add(s, SOURCE)][-1]


async def test_a_crash_looping_pod_is_proposed_deleted_and_verified(kube_cluster: KubeCluster, kube_namespace: str,
                                                                    own_node: str, tmp_path: Path) -> None:
    with kube_cluster.api_client() as api:
        core, apps = kubernetes.client.CoreV1Api(api), kubernetes.client.AppsV1Api(api)
        pod = _crash_looping_pod(own_node, core, apps, kube_namespace)
        incident = _incident(pod)
        assert incident.resource.kind == "pod" and {s.name for s in incident.signals} == {"kubernetes.pod_crashloop"}

        found = rank_incident_causes(incident, SOURCE, lambda names, kind: [], actions_for_kind,
                                     datetime.now(timezone.utc))
        by_action = {p.action: p for p in found.proposals}
        assert {"kubernetes.delete_pod", "kubernetes.rollout_restart"} <= set(by_action), by_action
        proposal = by_action["kubernetes.delete_pod"]
        assert proposal.params == {"namespace": kube_namespace, "name": pod["metadata"]["name"]}
        assert proposal.verify_rules == ["kubernetes.pod_crashloop"]

        settings = RemediationSettings(verify_window_s=20, verify_interval_s=0.5, verify_hold_s=3)
        steps = [s async for s in carry_out(proposal, _targets(kube_cluster, kube_namespace, tmp_path), settings)]
        assert [s.status for s in steps] == [ResultStatus.EXECUTED, ResultStatus.VERIFIED], steps
        assert "kubernetes.pod_crashloop cleared" in steps[-1].output
        replacements = [p for p in core.list_namespaced_pod(kube_namespace).items
                        if p.metadata.name != pod["metadata"]["name"]]
        assert replacements, "the ReplicaSet made a new pod"


async def test_a_replacement_that_crash_loops_too_is_not_recovered(kube_cluster: KubeCluster, kube_namespace: str,
                                                                   own_node: str, tmp_path: Path) -> None:
    """Verification reads the workload's pods now: the new pod crash-looping as well is a failure, said plainly
    (deleting a pod has no undo)."""
    import asyncio

    with kube_cluster.api_client() as api:
        core, apps = kubernetes.client.CoreV1Api(api), kubernetes.client.AppsV1Api(api)
        pod = _crash_looping_pod(own_node, core, apps, kube_namespace)
        found = rank_incident_causes(_incident(pod), SOURCE, lambda names, kind: [], actions_for_kind,
                                     datetime.now(timezone.utc))
        proposal = next(p for p in found.proposals if p.action == "kubernetes.delete_pod")
        old = pod["metadata"]["name"]

        async def break_the_replacement() -> None:
            fresh = await asyncio.to_thread(eventually, lambda: [
                p for p in core.list_namespaced_pod(kube_namespace).items if p.metadata.name != old], "a new pod")
            await asyncio.to_thread(crash_looping, core, kube_namespace, fresh[0].metadata.name)

        settings = RemediationSettings(verify_window_s=20, verify_interval_s=0.5, verify_hold_s=10)
        breaking = asyncio.create_task(break_the_replacement())
        steps = [s async for s in carry_out(proposal, _targets(kube_cluster, kube_namespace, tmp_path), settings)]
        await breaking
    assert steps[0].status == ResultStatus.EXECUTED
    assert steps[-1].status == ResultStatus.FAILED, steps
    assert "kubernetes.pod_crashloop cleared, then fired again" in steps[-1].output
    assert "cannot be undone" in steps[-1].output


async def test_a_pod_of_another_cluster_finds_no_target(kube_cluster: KubeCluster, kube_namespace: str,
                                                        tmp_path: Path) -> None:
    targets = _targets(kube_cluster, kube_namespace, tmp_path)
    elsewhere = ResourceRef(kind="pod", name="web-1", namespace=kube_namespace, cluster="prod-eu")
    with pytest.raises(ActionError, match="nor a kubernetes target of cluster prod-eu"):
        await targets.open_for(elsewhere, "default")
