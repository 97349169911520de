"""How casework's staff serve residents (core.ResidentRelation, hook `register_resident_relations`).

The social worker of a case, and its supervisor while they hold the supervisor role, serve the case's client's
resident -- the same relation as `services.case_scope` (closed cases included: the record stays theirs to
read, as the case does). Administrators are not served by rank here: core lets them see the resident with the
contact masked. A transfer moves the relation with the case (the previous worker stops serving at once).
"""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.sql.elements import ColumnElement

import core
from plugins.case_work.models import Case, Client
from plugins.case_work.services import MANAGE, SUPERVISE


def residents_served(viewer: core.Viewer, resident_id: ColumnElement[int]) -> ColumnElement[bool] | None:
    """The residents whose cases (of the caller's organisation) name the caller as social worker, or as
    supervisor while they hold the role; None for a caller who works no cases."""
    if viewer.account_id is None or viewer.organization_id is None or not core.can(viewer, MANAGE):
        return None
    relation: ColumnElement[bool] = Case.social_worker_account_id == viewer.account_id
    if core.can(viewer, SUPERVISE):
        relation = or_(relation, Case.supervisor_account_id == viewer.account_id)
    return resident_id.in_(
        select(Client.resident_id)
        .join(Case, Case.client_id == Client.id)
        .where(relation, Case.organization_id == viewer.organization_id)
    )


def relations() -> list[core.ResidentRelation]:
    """What `register_resident_relations` returns (plugin.py)."""
    return [core.ResidentRelation("case_work", residents_served)]
