"""Tables as plain NumPy columns: what `Run.metrics`, `Run.evaluations` and `Run.episodes` return."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rlsuite.core.logging import read_rows


class Table(dict):
    """column name -> 1-D NumPy array, all of one length (a missing value is NaN).

    `table["charts/episodic_return"]` is a column; `len(table)` the number of rows;
    `table.to_pandas()` a DataFrame when pandas is installed.
    """

    def __len__(self) -> int:
        return len(next(iter(self.values()))) if super().__len__() else 0

    @property
    def columns(self) -> list[str]:
        return list(self.keys())

    def to_pandas(self):
        import pandas as pd

        return pd.DataFrame(dict(self))

    def __repr__(self) -> str:
        return f"Table({len(self)} rows: {', '.join(self.columns)})"


def read_table(path: Path) -> Table:
    """A CSV log as a Table of float columns (empty when the file does not exist yet)."""
    columns, rows = read_rows(path)
    table = Table()
    for column in columns:
        table[column] = np.array([float(row[column]) if row.get(column) not in (None, "") else np.nan for row in rows])
    return table
