"""Domain errors with stable codes.

Services raise `DomainError`; the GraphQL layer turns it into `errors: [UserError!]!` on the mutation
payload after rolling the transaction back, so nothing a failed mutation did is ever written.
Codes are part of the public API: never rename one. Plugins add their own codes through a hook.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

# code -> description (shown in the SDL as the enum value's description)
CORE_ERROR_CODES: dict[str, str] = {
    "INVALID_INPUT": "A value has the wrong shape (e.g. not a number, unknown enum value).",
    "REQUIRED": "A value that must be present is empty.",
    "INVALID_PHONE": "Not a mainland-China mobile (1xxxxxxxxxx) or landline (0xx-xxxxxxxx) number.",
    "OUT_OF_RANGE": "A number or size is outside what is allowed.",
    "IN_PAST": "A time that must lie in the future lies in the past.",
    "INVALID_ID": "An ID is malformed or names an object of another type.",
    "NOT_FOUND": "No object exists with this ID.",
    "ALREADY_EXISTS": "An object with the same unique key exists already.",
    "INVALID_TRANSITION": "The object's current state does not allow this change.",
    "NO_ACCEPTED_ASSIGNMENT": "Work cannot start on a request without an accepted assignment.",
    "VOLUNTEER_UNAVAILABLE": "The volunteer is busy or off.",
    "VOLUNTEER_AT_CAPACITY": "The volunteer already holds their maximum of active assignments.",
    "ALREADY_ASSIGNED": "The volunteer already holds an active assignment on this request.",
    "NOT_MATCHABLE": "Only verified, matched or in-progress requests can be matched.",
    "STALE_PLAN": "The plan no longer fits: something changed since it was made; plan again.",
    "OFFER_EXPIRED": "The offer expired before it was answered.",
    "SLOT_TAKEN": "The person is already booked at that time.",
    "OUTSIDE_AVAILABILITY": "The person does not take appointments then (outside their hours, or away).",
    "LIAISON_TEAM_FULL": "A community's liaison team has one social worker and two volunteers at most.",
    "ORGANIZATION_MISMATCH": "The records named belong to different organisations and cannot be linked.",
    "PAGE_SIZE_EXCEEDED": "More items were asked for than one page may hold.",
    "INVALID_CURSOR": "A pagination cursor is malformed or belongs to another ordering.",
    "FORBIDDEN": "The caller may not do this.",
    "UNAUTHENTICATED": "The caller must sign in first, or the credentials are wrong.",
    "TOO_MANY_ATTEMPTS": "Too many failed sign-ins; wait before trying again.",
    "PLUGIN_DISABLED": "The plugin is not enabled for the caller's organisation.",
    "UNKNOWN_PLUGIN": "No plugin of that name exists.",
    "PLUGIN_NOT_INSTALLED": "The plugin exists but is not loaded in this deployment.",
    "PLUGIN_REJECTED": "A plugin refused the change (its message says why); nothing was saved.",
    "PLUGIN_FAILED": "A plugin failed while reacting to the change; nothing was saved.",
    "GRAPHQL_PARSE_FAILED": "The document is not valid GraphQL syntax.",
    "GRAPHQL_VALIDATION_FAILED": "The document does not fit the schema (unknown field, wrong argument, ...).",
    "INVALID_REQUEST": "The HTTP request is malformed (not JSON, not an object, bad encoding, missing query).",
    "BODY_TOO_LARGE": "The request body is larger than the service accepts.",
    "QUERY_TOO_DEEP": "The document nests selections deeper than allowed.",
    "TOO_MANY_ALIASES": "The document uses more aliases than allowed.",
    "TOO_MANY_TOKENS": "The document is longer (in tokens) than allowed.",
    "BATCH_TOO_LARGE": "A batched request holds more operations than allowed.",
    "QUERY_TOO_COSTLY": "The query would produce more objects than the cost budget allows (cost in extensions).",
    "RANGE_TOO_LARGE": "A date or time range is wider than a search may span.",
    "BUSY": "The service is at its limit for this kind of work; retry after the delay it names.",
    "UNAVAILABLE": "The database cannot be reached for now; retry shortly (check first whether a change was saved).",
    "VOLUNTEER_NOT_QUALIFIED": "The volunteer fails a qualification the request needs (in person, skills, "
    "credentials valid when needed, trainings); a coordinator may override it with a reason.",
    "REQUEST_FULLY_STAFFED": "The request already has as many offered or accepted volunteers as it needs.",
    "CONSENT_REQUIRED": "No consent of the resident in force covers sharing this with this recipient.",
    "REFERRAL_TARGET_UNKNOWN": "No plugin offers a referral target of that name in this deployment.",
    "REFERRAL_TARGET_DISABLED": "The receiving organisation has not enabled the plugin the referral is for.",
    # -- imports (core.imports): file-level problems; nothing is written --
    "UNSUPPORTED_FILE": "The file is not a CSV or XLSX spreadsheet, or cannot be read as one.",
    "EMPTY_FILE": "The file has no header row or no data rows.",
    "TOO_LARGE": "The file is larger, or holds more rows, than an import accepts.",
    "INVALID_MAPPING": "A column mapping names an unknown field, maps two columns to one field, or leaves a "
    "required field without a column.",
    "DUPLICATE_ROW": "An import row repeats the key (e.g. the phone number) of an earlier row of the same file; "
    "the earlier row was taken.",
}


@dataclass(frozen=True)
class UserErrorData:
    """One problem with a request, addressed to the field that caused it (path from the mutation input).

    `message` is the English text; `template` and `params` (when the message has values in it) let the
    presenting layer say it in the caller's language (core.i18n)."""

    message: str
    code: str
    field: tuple[str, ...] | None = None
    template: str | None = None
    params: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, code: str, template: str, field: Sequence[str] | None = None, **params: Any) -> UserErrorData:
        from core.i18n import translate

        return cls(
            message=translate(template, params, "en") if params else template,
            code=code,
            field=tuple(field) if field else None,
            template=template if params else None,
            params=tuple(params.items()),
        )

    def localized(self, locale: str | None = None) -> str:
        """The message in `locale` (default: the caller's)."""
        from core.i18n import translate

        return translate(self.template or self.message, self.params, locale)


class DomainError(Exception):
    """An expected failure: the caller did something the rules do not allow.

    `message` is an English template; values go in `params` (`DomainError("OUT_OF_RANGE", "At most {limit}.",
    ("input", "n"), limit=5)`) so that the message can be translated (core/locale/*.po)."""

    def __init__(self, code: str, message: str, field: Sequence[str] | None = None, **params: Any) -> None:
        error = UserErrorData.of(code, message, field, **params)
        super().__init__(error.message)
        self.errors = [error]

    @classmethod
    def many(cls, errors: Iterable[UserErrorData]) -> DomainError:
        items = list(errors)
        if not items:
            raise ValueError("DomainError.many needs at least one error")
        err = cls(items[0].code, items[0].message, items[0].field)
        err.errors = items
        return err

    @property
    def code(self) -> str:
        return self.errors[0].code

    def __str__(self) -> str:
        return "; ".join(f"{e.code}: {e.message}" for e in self.errors)


class NotFound(DomainError):
    def __init__(self, what: str, field: Sequence[str] | None = ("id",)) -> None:
        from core.i18n import Text

        # `what` names a kind of record ("Help request"): translated along with the sentence.
        super().__init__("NOT_FOUND", "{what} not found.", field, what=Text(what))


class Validator:
    """Collects field errors so a caller sees every problem of an input at once, not one per try."""

    def __init__(self) -> None:
        self.errors: list[UserErrorData] = []

    def add(self, field: Sequence[str] | str, code: str, message: str, **params: Any) -> None:
        path = (field,) if isinstance(field, str) else tuple(field)
        self.errors.append(UserErrorData.of(code, message, path, **params))

    def check(self, condition: bool, field: Sequence[str] | str, code: str, message: str, **params: Any) -> bool:
        if not condition:
            self.add(field, code, message, **params)
        return condition

    def raise_if_any(self) -> None:
        if self.errors:
            raise DomainError.many(self.errors)
