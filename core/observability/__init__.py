"""What an operator watches a running service by: Prometheus metrics (`metrics`), one id per request carried
by every log line and echoed to the client (`requests`), and text or JSON log lines (`logs`).

Nothing here imports the GraphQL layer: schema/operation_labels.py labels each operation by the root fields it
selects (a schema extension the composition root, yunshegong.app, adds) and counts it in these metrics; the HTTP
view and the websocket transport call its `record_graphql_operation` with the duration and error codes.
"""

from core.observability.logs import (
    LOG_FIELDS,
    JsonFormatter,
    RequestIdFilter,
    TextFormatter,
    configure_logging,
    logging_config,
)
from core.observability.metrics import (
    OTHER,
    GaugeSources,
    LabelFolder,
    multiprocess_directory,
    record_refusal,
    render,
    result_codes,
)
from core.observability.requests import (
    REQUEST_ID_HEADER,
    RequestMiddleware,
    current_request_id,
    new_request_id,
    well_formed_request_id,
)

__all__ = [
    "LOG_FIELDS",
    "OTHER",
    "REQUEST_ID_HEADER",
    "GaugeSources",
    "JsonFormatter",
    "LabelFolder",
    "RequestIdFilter",
    "RequestMiddleware",
    "TextFormatter",
    "configure_logging",
    "current_request_id",
    "logging_config",
    "multiprocess_directory",
    "new_request_id",
    "record_refusal",
    "render",
    "result_codes",
    "well_formed_request_id",
]
