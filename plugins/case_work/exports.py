"""The casework plugin's download (core.ExportDefinition): cases, without their confidential notes."""

from __future__ import annotations

import core
from core.i18n import _

C = core.ExportColumn

EXPORTS = [
    core.ExportDefinition(
        name="caseWorkCases",
        label=_("Casework: cases"),
        document="""query Export($first: Int, $after: String, $filter: CaseWorkCaseFilter) {
  caseWorkCases(first: $first, after: $after, filter: $filter) {
    nodes { category riskLevel stage openedAt closedAt client { name phone community { name } }
            socialWorker { name } supervisor { name } }
    pageInfo { hasNextPage endCursor }
  }
}""",
        connection="caseWorkCases",
        columns=(
            C("client", _("Client"), "client.name"),
            C("clientPhone", _("Client phone"), "client.phone"),
            C("community", _("Community"), "client.community.name"),
            C("category", _("Category"), "category"),
            C("riskLevel", _("Risk level"), "riskLevel"),
            C("stage", _("Stage"), "stage"),
            C("socialWorker", _("Social worker"), "socialWorker.name"),
            C("supervisor", _("Supervisor"), "supervisor.name"),
            C("openedAt", _("Opened at"), "openedAt", "datetime"),
            C("closedAt", _("Closed at"), "closedAt", "datetime"),
        ),
        variables=("filter",),
        permission="case_work.manage",
    ),
]
