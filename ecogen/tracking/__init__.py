"""MLflow and CodeCarbon for EcoGen: the only modules that import them.

Entry points call :func:`ecogen.runtime.environment.quiet_defaults` once, then :func:`start_pipeline_run`;
each stage runs inside :func:`track_stage` and logs its :class:`~ecogen.stages.result.StageResult`
with :func:`log_result` (or ``handle.log(result)``).
"""

from ecogen.tracking.mlflow_log import log_result
from ecogen.tracking.runs import (
    DATA_VERSION,
    finish_run,
    flatten_params,
    set_data_version,
    start_child_run,
    start_pipeline_run,
)
from ecogen.tracking.stage import track_stage
from ecogen.tracking.uri import resolve_tracking_uri

__all__ = [
    "DATA_VERSION",
    "finish_run",
    "flatten_params",
    "log_result",
    "resolve_tracking_uri",
    "set_data_version",
    "start_child_run",
    "start_pipeline_run",
    "track_stage",
]
