"""Markdown tables for the outputs that grow with the grid (`plan`, the generic report).

The same text as ``tabulate(rows, headers, tablefmt="github", disable_numparse=True)``
(a test checks it on random tables), without tabulate's per-cell type detection, which
costs a 10,000-run plan or report more than everything else it does.
"""
from __future__ import annotations


def markdown_table(rows: list[list], headers: list[str]) -> str:
    cells = [["" if value is None else str(value) for value in row] for row in rows]
    widths = [max([len(header) + 2] + [len(row[i]) for row in cells]) for i, header in enumerate(headers)]

    def line(values) -> str:
        return "| " + " | ".join(value.ljust(width) for value, width in zip(values, widths)) + " |"

    return "\n".join([line(headers), "|" + "|".join("-" * (width + 2) for width in widths) + "|", *map(line, cells)])
