"""The counseling plugin's download (core.ExportDefinition): sessions, without their confidential notes."""

from __future__ import annotations

import core
from core.i18n import _

C = core.ExportColumn

EXPORTS = [
    core.ExportDefinition(
        name="counselingSessions",
        label=_("Counseling sessions"),
        document="""query Export($first: Int, $after: String, $filter: CounselingSessionFilter) {
  counselingSessions(first: $first, after: $after, filter: $filter) {
    nodes { status mode start end place counselor { name } client { name phone } cancelReason }
    pageInfo { hasNextPage endCursor }
  }
}""",
        connection="counselingSessions",
        columns=(
            C("start", _("Start"), "start", "datetime"),
            C("end", _("End"), "end", "datetime"),
            C("status", _("Status"), "status"),
            C("mode", _("Mode"), "mode"),
            C("place", _("Place"), "place"),
            C("counselor", _("Counselor"), "counselor.name"),
            C("client", _("Client"), "client.name"),
            C("clientPhone", _("Client phone"), "client.phone"),
            C("cancelReason", _("Reason for cancelling"), "cancelReason"),
        ),
        variables=("filter",),
        permission="counseling.manage",
    ),
]
