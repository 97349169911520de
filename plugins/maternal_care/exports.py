"""The maternal care plugin's download (core.ExportDefinition): overdue follow-ups of the mothers one serves."""

from __future__ import annotations

import core
from core.i18n import _

C = core.ExportColumn

EXPORTS = [
    core.ExportDefinition(
        name="maternalCareOverdueFollowUps",
        label=_("Maternal care: overdue follow-ups"),
        document="""query Export($first: Int, $after: String, $asOf: Date, $timeZone: String) {
  maternalCareOverdueFollowUps(first: $first, after: $after, asOf: $asOf, timeZone: $timeZone) {
    nodes { label windowStart windowEnd status rebookNeeded bookedAt staff { name }
            pregnancy { edd riskColour mother { name community { name } } } }
    pageInfo { hasNextPage endCursor }
  }
}""",
        connection="maternalCareOverdueFollowUps",
        columns=(
            C("mother", _("Mother"), "pregnancy.mother.name"),
            C("community", _("Community"), "pregnancy.mother.community.name"),
            C("followUp", _("Follow-up"), "label"),
            C("windowStart", _("Window opens"), "windowStart", "date"),
            C("windowEnd", _("Window closes"), "windowEnd", "date"),
            C("status", _("Status"), "status"),
            C("bookedAt", _("Booked at"), "bookedAt", "datetime"),
            C("staff", _("Staff"), "staff.name"),
            C("edd", _("Due date"), "pregnancy.edd", "date"),
            C("riskColour", _("Risk colour"), "pregnancy.riskColour"),
        ),
        variables=("asOf", "timeZone"),
        permission="maternal_care.manage",
    ),
]
