"""What the notify stage holds back while a silence or maintenance window is in force.

A notice about an incident that is silenced (``Incident.silenced_by``, or a silence in force now that matches one
of its resources) is not sent: it is audited ``notification.silenced`` and the incident's latest revision is held.
When no silence holds it any more (the window passed, or someone ended the silence) and it is still open, it is
released: notified then, as if it had just opened. An incident that resolves while held is never told (nobody was
paged for it). A prediction about a silenced resource is dropped the same way, and not held (the next one tells).
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime

from kubestack.contract.base import Event
from kubestack.contract.events import Incident, IncidentStatus, Prediction
from kubestack.pipeline.notify.notice import Context
from kubestack.pipeline.silences import SilenceBook

MAX_HELD = 5000


class SilenceHold:
    def __init__(self, book: SilenceBook) -> None:
        self.book = book
        self._held: OrderedDict[str, Incident] = OrderedDict()

    @property
    def held(self) -> list[str]:
        return list(self._held)

    def silencing(self, event: Event, context: Context, now: datetime) -> list[str]:
        """Ids of the silences that keep ``event``'s notice from being sent (empty: send it). Holds the incident."""
        if isinstance(event, Prediction):
            return self.book.for_resource(event.resource, event.tenant, now)
        incident = event if isinstance(event, Incident) else context.incident
        if incident is None:
            return []
        held = incident.incident_id in self._held
        if incident.status is IncidentStatus.RESOLVED:
            self._held.pop(incident.incident_id, None)
            return ["(held until it resolved)"] if held else []
        by = sorted(set(incident.silenced_by) | set(self.book.for_incident(incident, now)))
        if by:
            self._keep(incident)
        else:  # nothing silences it now: this revision goes out, and it is held no more
            self._held.pop(incident.incident_id, None)
        return by

    def released(self, now: datetime) -> list[Incident]:
        """The held incidents no silence holds any more, let go (to be notified now)."""
        free = [i for i in self._held.values() if not self.book.for_incident(i, now)]
        for incident in free:
            del self._held[incident.incident_id]
        return [i.model_copy(update={"silenced_by": []}) for i in free]

    def _keep(self, incident: Incident) -> None:
        self._held.pop(incident.incident_id, None)
        self._held[incident.incident_id] = incident
        while len(self._held) > MAX_HELD:
            self._held.popitem(last=False)
