"""Every error KubeStack-AI raises on purpose.

    KubestackError                  base; ``retriable`` says whether trying again may help
    ├── ConfigError                 settings or a config file are wrong
    ├── SeriesFormatError           a CSV that is not a timestamp,value series (names file and line)
    │   └── CaseFormatError         a root-cause replay folder that does not fit its layout
    ├── AuditError                  the local audit store cannot be written or read back
    │   └── AuditStoreLockedError   another writer (worker) holds the store
    ├── ContractError               a message does not fit the event contract
    │   ├── UnknownTopicError       no topic of that name in the registry
    │   └── EventDecodeError        bytes that are not a valid event of the topic's model
    ├── KnowledgeError              the knowledge base cannot be read or built
    │   ├── RunbookFormatError      a runbook's front matter or layout is wrong (names the file)
    │   └── IndexNotFoundError      no index on disk yet: run ``kubestack knowledge ingest``
    ├── PluginError
    │   ├── PluginNotFoundError     no installed plugin of that name
    │   ├── CommandFailedError      a command a plugin ran (locally or over SSH) exited non-zero
    │   ├── TargetError             a target could not be collected; becomes a "target down" finding
    │   │   ├── TargetUnreachableError  connection refused, DNS, no route (retriable)
    │   │   ├── TargetAuthError         wrong password, key refused, host key mismatch
    │   │   └── TargetTimeoutError      no answer in time (retriable)
    │   └── ActionError             a plugin action could not be carried out
    │       ├── UnknownActionError
    │       ├── ActionParamsError       missing or invalid parameters
    │       ├── PreconditionFailedError a precondition does not hold now; nothing was changed
    │       └── ActionDeniedError       the target refused the action for lack of permission (Kubernetes RBAC 403)
    ├── ScheduleError               a silence's schedule or time zone cannot be read (names what is wrong)
    ├── RemoteApiError              a CLI call to the KubeStack API failed (unreachable, 401/403, 4xx)
    ├── LocalKubeError              the local Kubernetes API server cannot be started or stopped
    │   ├── KubeBinaryNotFoundError the control-plane binaries are not built: run ``make setup``
    │   ├── KubePortBusyError       a port it needs is taken
    │   └── KubeStartError          etcd, kube-apiserver or kube-controller-manager exited or never got ready
    └── KafkaError
        ├── KafkaUnavailableError   the bootstrap servers do not answer (retriable)
        └── LauncherError           the local broker cannot be prepared, started or stopped
            ├── JavaNotFoundError
            ├── MavenNotFoundError
            ├── JarResolutionError
            ├── PortBusyError
            └── BrokerStartError

Messages say what to do, not only what went wrong: they are shown to users as they are.
"""

from __future__ import annotations

from pydantic import ValidationError


def validation_problems(exc: ValidationError, *, limit: int | None = None, whole: str = "<message>") -> str:
    """A pydantic error as one line a person can act on: ``where: what; where: what (+N more)``."""
    errors = exc.errors(include_url=False)
    shown = errors if limit is None else errors[:limit]
    text = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or whole}: {err['msg']}" for err in shown)
    more = len(errors) - len(shown)
    return text + (f" (+{more} more)" if more > 0 else "")


class KubestackError(Exception):
    retriable: bool = False


class ConfigError(KubestackError):
    pass


class SeriesFormatError(KubestackError):
    pass


class CaseFormatError(SeriesFormatError):
    pass


class KnowledgeError(KubestackError):
    pass


class RunbookFormatError(KnowledgeError):
    pass


class IndexNotFoundError(KnowledgeError):
    pass


class AuditError(KubestackError):
    pass


class AuditStoreLockedError(AuditError):
    """Another writer holds the local audit store."""


class ContractError(KubestackError):
    pass


class UnknownTopicError(ContractError):
    pass


class EventDecodeError(ContractError):
    """Carries the topic and a one-line reason fit for a dead-letter record."""

    def __init__(self, topic: str, reason: str) -> None:
        super().__init__(f"{topic}: {reason}")
        self.topic = topic
        self.reason = reason


class PluginError(KubestackError):
    pass


class PluginNotFoundError(PluginError):
    pass


class CommandFailedError(PluginError):
    def __init__(self, argv: list[str], returncode: int, stderr: str) -> None:
        super().__init__(f"{' '.join(argv)} exited {returncode}: {stderr.strip()[:500]}")
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr


class TargetError(PluginError):
    pass


class TargetUnreachableError(TargetError):
    retriable = True


class TargetAuthError(TargetError):
    pass


class TargetTimeoutError(TargetError):
    retriable = True


class ActionError(PluginError):
    """A plugin action could not be carried out."""


class UnknownActionError(ActionError):
    pass


class ActionParamsError(ActionError):
    """Missing or invalid parameters for an action."""


class PreconditionFailedError(ActionError):
    """A precondition of the action does not hold on the target right now; nothing was changed."""

    def __init__(self, action: str, problems: list[str]) -> None:
        super().__init__(f"{action}: " + "; ".join(problems))
        self.action = action
        self.problems = problems


class ActionDeniedError(ActionError):
    """The target refused the action for lack of permission (a Kubernetes 403): the grants must change, not the
    attempt; nothing was changed."""


class ScheduleError(KubestackError):
    """A silence's schedule ('Sun 02:00-04:00', a cron spec) or its time zone cannot be read."""


class RemoteApiError(KubestackError):
    """A CLI call to the KubeStack API failed: unreachable, refused (401/403), or told what is wrong (4xx)."""


class KafkaError(KubestackError):
    pass


class KafkaUnavailableError(KafkaError):
    retriable = True


class LauncherError(KafkaError):
    pass


class JavaNotFoundError(LauncherError):
    pass


class MavenNotFoundError(LauncherError):
    pass


class JarResolutionError(LauncherError):
    retriable = True


class PortBusyError(LauncherError):
    pass


class BrokerStartError(LauncherError):
    pass


class LocalKubeError(KubestackError):
    pass


class KubeBinaryNotFoundError(LocalKubeError):
    pass


class KubePortBusyError(LocalKubeError):
    pass


class KubeStartError(LocalKubeError):
    pass
