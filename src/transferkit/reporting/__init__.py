"""Standalone HTML run reports."""
from .._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(("RunReport", "render_html", "write_report"), ".html"),
    **dict.fromkeys(("REPORT_FILE", "write_run_report"), ".run_report"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)  # matplotlib loads with the first report

__all__ = sorted(_EXPORTS)
