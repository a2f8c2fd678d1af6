"""Least privilege on the bus of the secure local cluster: who may write each topic of the contract.

The brokers run KRaft's ``StandardAuthorizer``. A topic of the contract (under a topic prefix that was granted) may
be read and described by every authenticated user, and written only by the components that produce it: the agent
its input topics, the worker what it derives (anomalies, predictions, incidents, reports, proposals, results,
notifications, audit), the API the decisions (and its audit entries). The shared identity (the CLI) writes none.
Resources without ACLs (consumer groups, the worker's own changelog and repartition topics, other topics) stay open
to authenticated users (``allow.everyone.if.no.acl.found``); the cluster itself is not: altering it, its
configuration or its ACLs takes the brokers' super user.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError, KafkaError as AIOKafkaError
from aiokafka.protocol.admin import CreateAclsRequestStruct
from aiokafka.protocol.api import Request

from kubestack.bus import client_options
from kubestack.contract.topics import (
    ANOMALIES,
    AUDIT,
    AUDIT_ENTRIES,
    CONFIG_CHANGES,
    CONFIG_SNAPSHOTS,
    DEAD_LETTER,
    HEALTH,
    INCIDENTS,
    LOGS,
    METRICS,
    NOTIFICATIONS,
    PREDICTIONS,
    RCA_REPORTS,
    REMEDIATION_DECISIONS,
    REMEDIATION_PROPOSALS,
    REMEDIATION_RESULTS,
    SILENCES,
    TOPICS,
    TopicSpec,
)
from kubestack.errors import KafkaError, KafkaUnavailableError
from kubestack.settings import KafkaComponent, KafkaSettings

PROPERTIES = """
# Least privilege: ACLs per component on the contract's topics (kubestack.deploy.kafka.acls)
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=true
"""

WRITERS: dict[TopicSpec, tuple[KafkaComponent, ...]] = {
    METRICS: ("agent",), LOGS: ("agent",), CONFIG_SNAPSHOTS: ("agent",), CONFIG_CHANGES: ("agent",),
    HEALTH: ("agent",),
    ANOMALIES: ("agent", "worker"),  # the agent's Alertmanager receiver, the worker's detectors
    PREDICTIONS: ("worker",), INCIDENTS: ("worker",), RCA_REPORTS: ("worker",), REMEDIATION_PROPOSALS: ("worker",),
    REMEDIATION_RESULTS: ("worker",), NOTIFICATIONS: ("worker",), AUDIT: ("worker",),
    REMEDIATION_DECISIONS: ("api",), SILENCES: ("api",),
    AUDIT_ENTRIES: ("worker", "api"), DEAD_LETTER: ("worker", "api"),
}
assert set(WRITERS) == set(TOPICS), "every topic of the contract names its writers"

# Kafka's protocol codes (org.apache.kafka.common.acl / resource)
_TOPIC, _CLUSTER = 2, 4
_LITERAL = 3
_READ, WRITE_OPERATION, _CREATE, _DESCRIBE, _DESCRIBE_CONFIGS, _IDEMPOTENT_WRITE = 3, 4, 5, 8, 10, 12
_ALLOW = 3
_CLUSTER_NAME = "kafka-cluster"


@dataclass(frozen=True)
class Acl:
    resource_type: int
    resource_name: str
    principal: str
    operation: int


def cluster_acls() -> list[Acl]:
    """Every authenticated user may describe the cluster, create topics and write idempotently; nothing more (the
    brokers and controllers between themselves are the super user)."""
    return [Acl(_CLUSTER, _CLUSTER_NAME, "User:*", operation)
            for operation in (_DESCRIBE, _CREATE, _DESCRIBE_CONFIGS, _IDEMPOTENT_WRITE)]


def topic_acls(prefix: str, users: dict[KafkaComponent, str]) -> list[Acl]:
    """The contract's topics under ``prefix``: read by all, written by their writers (``users``: component → user)."""
    acls = []
    for spec, writers in WRITERS.items():
        name = spec.qualified(prefix)
        acls += [Acl(_TOPIC, name, "User:*", operation) for operation in (_READ, _DESCRIBE, _DESCRIBE_CONFIGS)]
        acls += [Acl(_TOPIC, name, f"User:{users[component]}", WRITE_OPERATION) for component in writers]
    return acls


class _CreateAcls(Request[CreateAclsRequestStruct]):
    """Every binding in one CreateAcls request, which the controller commits at once (aiokafka's CreateAclsRequest
    carries one: a request each took about 0.3 s on a loaded 3-node cluster, 27 s for the contract's 75)."""

    API_KEY = 30

    def __init__(self, acls: list[Acl]) -> None:
        self.acls = acls

    def build(self, request_struct_class: type[CreateAclsRequestStruct]) -> CreateAclsRequestStruct:
        if request_struct_class.API_VERSION < 1:  # no pattern type: literal
            return request_struct_class([(a.resource_type, a.resource_name, a.principal, "*", a.operation, _ALLOW)
                                         for a in self.acls])
        return request_struct_class([(a.resource_type, a.resource_name, _LITERAL, a.principal, "*", a.operation,
                                      _ALLOW) for a in self.acls])


async def create_acls(admin_kafka: KafkaSettings, acls: list[Acl]) -> None:
    """Create ``acls`` as the super user ``admin_kafka`` authenticates as (creating one twice is harmless)."""
    admin = AIOKafkaAdminClient(**client_options(admin_kafka))
    try:
        await admin.start()
        response = await admin._send_request(_CreateAcls(acls))  # aiokafka's admin client has no create_acls
        for acl, (code, message) in zip(acls, response.creation_responses, strict=True):  # in the request's order
            if code != 0:
                raise KafkaError(f"creating the ACL {acl} failed with Kafka error {code}: {message}")
    except (KafkaConnectionError, AIOKafkaError, OSError) as exc:
        raise KafkaUnavailableError(f"cannot create ACLs on {admin_kafka.bootstrap}: {exc}") from exc
    finally:
        await admin.close()


def component_users(kafka: KafkaSettings) -> dict[KafkaComponent, str]:
    """Each component's user in ``kafka`` (its own, else the shared one)."""
    return {c: kafka.for_component(c).credentials.username for c in get_args(KafkaComponent)}
