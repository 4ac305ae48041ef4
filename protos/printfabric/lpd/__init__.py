"""RFC 1179 (LPD): the control-file model both ends share, an asyncio client and server."""

from printfabric.lpd.client import (
    DEFAULT_PORT,
    check_queue_name,
    queue_state,
    remove_jobs,
    send_job,
)
from printfabric.lpd.control import (
    FIELD_LIMITS,
    FILE_TYPES,
    ControlFile,
    PrintFile,
    clean,
    control_file_name,
    data_file_name,
)
from printfabric.lpd.errors import LpdError
from printfabric.lpd.server import (
    LpdHandler,
    LpdLimits,
    LpdRefused,
    LpdServer,
    ReceivedFile,
    ReceivedJob,
    serving_lpd,
)
from printfabric.lpd.uri import MAX_LPR_URI, check_lpr_uri, lpr_uri

__all__ = [
    "DEFAULT_PORT",
    "FIELD_LIMITS",
    "FILE_TYPES",
    "MAX_LPR_URI",
    "ControlFile",
    "LpdError",
    "LpdHandler",
    "LpdLimits",
    "LpdRefused",
    "LpdServer",
    "PrintFile",
    "ReceivedFile",
    "ReceivedJob",
    "check_lpr_uri",
    "check_queue_name",
    "clean",
    "control_file_name",
    "data_file_name",
    "lpr_uri",
    "queue_state",
    "remove_jobs",
    "send_job",
    "serving_lpd",
]
