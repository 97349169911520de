"""The supplies plugin's downloads (core.ExportDefinition): stock on hand, the category report, distributions.

Each is a query of the plugin's own GraphQL fields, so supplies staff (supplies.manage) get them and nobody else.
suppliesReportCsv stays as it was; the `suppliesReport` export is its streamed, bilingual generalisation."""

from __future__ import annotations

import core
from core.i18n import _

C = core.ExportColumn

EXPORTS = [
    core.ExportDefinition(
        name="suppliesStock",
        label=_("Supplies: stock on hand"),
        document="""query Export($nearExpiryDays: Int, $below: Int, $warehouseId: ID, $itemId: ID) {
  suppliesStock(nearExpiryDays: $nearExpiryDays, below: $below, warehouseId: $warehouseId, itemId: $itemId) {
    expiresOn onHand item { name category unit } warehouse { name }
  }
}""",
        connection="suppliesStock",
        columns=(
            C("item", _("Item"), "item.name"),
            C("category", _("Category"), "item.category"),
            C("unit", _("Unit"), "item.unit"),
            C("warehouse", _("Warehouse"), "warehouse.name"),
            C("onHand", _("On hand"), "onHand", "number"),
            C("expiresOn", _("Expires on"), "expiresOn", "date"),
        ),
        variables=("nearExpiryDays", "below", "warehouseId", "itemId"),
        permission="supplies.manage",
    ),
    core.ExportDefinition(
        name="suppliesReport",
        label=_("Supplies: report by category"),
        document="""query Export($since: DateTime, $until: DateTime) {
  suppliesReport(since: $since, until: $until) {
    category opening received distributed adjusted transferredNet onHand balanced
  }
}""",
        connection="suppliesReport",
        columns=(
            C("category", _("Category"), "category"),
            C("opening", _("Opening"), "opening", "number"),
            C("received", _("Received"), "received", "number"),
            C("distributed", _("Distributed"), "distributed", "number"),
            C("adjusted", _("Adjusted"), "adjusted", "number"),
            C("transferredNet", _("Transferred (net)"), "transferredNet", "number"),
            C("onHand", _("On hand"), "onHand", "number"),
            C("balanced", _("Balanced"), "balanced"),
        ),
        variables=("since", "until"),
        permission="supplies.manage",
    ),
    core.ExportDefinition(
        name="suppliesDistributions",
        label=_("Supplies: distributions"),
        document="""query Export($first: Int, $after: String, $filter: SuppliesDistributionFilter) {
  suppliesDistributions(first: $first, after: $after, filter: $filter) {
    nodes { status recipient quantity deliveredQuantity note createdAt dispatchedAt confirmedAt confirmedBy
            item { name unit } warehouse { name } community { name } request { title } }
    pageInfo { hasNextPage endCursor }
  }
}""",
        connection="suppliesDistributions",
        columns=(
            C("item", _("Item"), "item.name"),
            C("unit", _("Unit"), "item.unit"),
            C("quantity", _("Quantity"), "quantity", "number"),
            C("deliveredQuantity", _("Delivered"), "deliveredQuantity", "number"),
            C("warehouse", _("Warehouse"), "warehouse.name"),
            C("recipient", _("Recipient"), "recipient"),
            C("community", _("Community"), "community.name"),
            C("request", _("Help request"), "request.title"),
            C("status", _("Status"), "status"),
            C("createdAt", _("Created at"), "createdAt", "datetime"),
            C("dispatchedAt", _("Dispatched at"), "dispatchedAt", "datetime"),
            C("confirmedAt", _("Confirmed at"), "confirmedAt", "datetime"),
            C("confirmedBy", _("Confirmed by"), "confirmedBy"),
            C("note", _("Note"), "note"),
        ),
        variables=("filter",),
        permission="supplies.manage",
    ),
]
