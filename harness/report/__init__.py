"""`harness report`: records -> runs frame -> cells -> tables and figures, for any family.
No torch here: a report is made on any machine from the records alone.

The line, one module each:
- ``collect``: the suite's records -> one runs frame (one store scan);
- ``cells`` and ``verdicts``: the cell model (``model``) computed once per report: per
  cell and metric the seeds' values and intervals, the interval across seeds, the test
  set's shared error, the reported number and its reproduction verdict (reproduced, not
  reproduced, inconclusive: ``harness.reproduction``), cost figures, the label against the
  best of its group (``harness.comparisons.against_best``);
- ``paired``: the one pairing rule, and the comparisons with a baseline (Holm);
- ``claims``: the suite's claims tested (``harness.claims``), in every format;
- ``power``: ``harness plan --power``, the seeds each verdict needs (``harness.seedplan``);
- ``figures`` (drawn by ``plots``): the PNGs beside the report;
- ``columns``: every column of the tables, declared once for every format;
- ``markdown``, ``latex``, ``tidy`` (CSV), ``document`` (JSON): one renderer per format,
  which only formats the cells;
- ``shared``: what every family's report shares (keys, verdict words, number texts and
  intervals clipped to a metric's bounds, LaTeX, tidy CSV, JSON-safe values);
- ``generic``: the generic report's ``build``. A family may replace it
  (``Family.report``: ``build(suite, store, fmt, options) -> (text, warnings)``, its module
  declaring ``FORMATS``) and build on these pieces, as the multi-task and RL reports do.
"""
from harness.record import REPORT_FILES
from harness.report.generic import FORMATS, build

__all__ = ["FORMATS", "REPORT_FILES", "build"]
