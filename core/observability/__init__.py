"""What an operator watches a running service by: Prometheus metrics (`metrics`), one id per request carried
by every log line and echoed to the client (`requests`), and text or JSON log lines (`logs`).

Nothing here imports the schema: the composition root (yunshegong.app) adds OperationLabel to the schema it
builds (labels come from the root fields each operation selects, `operations`), and the HTTP view and the
websocket transport call `record_graphql_operation` with the duration and error codes of what they ran.
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
from core.observability.operations import (
    INVALID,
    OperationLabel,
    current_operation_label,
    operation_label,
    record_graphql_operation,
)
from core.observability.requests import (
    REQUEST_ID_HEADER,
    RequestMiddleware,
    current_request_id,
    new_request_id,
    well_formed_request_id,
)

__all__ = [
    "INVALID",
    "LOG_FIELDS",
    "OTHER",
    "REQUEST_ID_HEADER",
    "GaugeSources",
    "JsonFormatter",
    "LabelFolder",
    "OperationLabel",
    "RequestIdFilter",
    "RequestMiddleware",
    "TextFormatter",
    "configure_logging",
    "current_operation_label",
    "current_request_id",
    "logging_config",
    "multiprocess_directory",
    "new_request_id",
    "operation_label",
    "record_graphql_operation",
    "record_refusal",
    "render",
    "result_codes",
    "well_formed_request_id",
]
