"""The HTML report of a results directory and its figures.

- :mod:`rankbygene.report.discover`: which results a directory holds.
- :mod:`rankbygene.report.html`: tables, figures and the page (:func:`build_report`).
- :mod:`rankbygene.report.plots`: the figures, usable on their own.
"""

from rankbygene.report.discover import ReportSections, discover_report_inputs
from rankbygene.report.html import build_report

__all__ = ["ReportSections", "build_report", "discover_report_inputs"]
