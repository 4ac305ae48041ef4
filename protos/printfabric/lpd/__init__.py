"""RFC 1179 (LPD): the control-file model both ends share and an asyncio client."""

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

__all__ = [
    "DEFAULT_PORT",
    "FIELD_LIMITS",
    "FILE_TYPES",
    "ControlFile",
    "LpdError",
    "PrintFile",
    "check_queue_name",
    "clean",
    "control_file_name",
    "data_file_name",
    "queue_state",
    "remove_jobs",
    "send_job",
]
