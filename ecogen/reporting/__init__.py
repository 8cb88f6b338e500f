"""The comparison report: pure aggregation, target checks, Markdown/CSV/JSON tables and figures.

Nothing here reads MLflow; :mod:`ecogen.tracking.report` turns runs into :class:`Trial` records
and hands them over, so every number in the report can be checked from literal inputs in tests.
"""

from ecogen.reporting.cycles import Cycle
from ecogen.reporting.summary import RowSummary, Stat, Trial, aggregate, summarize
from ecogen.reporting.targets import TargetCheck, check_targets

__all__ = ["Cycle", "RowSummary", "Stat", "TargetCheck", "Trial", "aggregate", "check_targets", "summarize"]
