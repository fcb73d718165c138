"""The results store (``storage``: SQLite, one row per run) and its summaries."""

from stability.store.storage import (
    APPLICATION_ID,
    COLUMNS,
    METRIC_COLUMNS,
    PARAM_COLUMNS,
    POINT_COLUMNS,
    SCHEMA_VERSION,
    ResultStore,
    export_csv,
    flatten_metrics,
    load,
)
from stability.store.summary import (
    DEFAULT_SUMMARY_METRICS,
    format_summary,
    summarize,
    summary_records,
    write_summary_csv,
)

__all__ = ["ResultStore", "flatten_metrics", "load", "export_csv", "summarize",
           "format_summary", "summary_records", "write_summary_csv", "APPLICATION_ID", "COLUMNS", "METRIC_COLUMNS", "PARAM_COLUMNS", "POINT_COLUMNS",
           "SCHEMA_VERSION", "DEFAULT_SUMMARY_METRICS"]
