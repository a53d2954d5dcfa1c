"""Standalone HTML run reports."""
from .html import RunReport, render_html, write_report
from .run_report import REPORT_FILE, write_run_report

__all__ = ["REPORT_FILE", "RunReport", "render_html", "write_report", "write_run_report"]
