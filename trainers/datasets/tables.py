"""Reading comma-separated tables with a header row (the grid file, a user's own table).

Every problem is one line naming the file (and the line and column where there is one): an empty
file, a ragged row, a missing column, a non-numeric feature. Torch-free; numpy is imported only
where a table becomes arrays.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from trainers.datasets.registry import DataError

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Table:
    path: Path
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    lines: tuple[int, ...]           # the file's line number of each row (for error messages)

    def column(self, name: str) -> int:
        try:
            return self.header.index(name)
        except ValueError:
            raise DataError(f"{self.path}: no column {name!r}; the columns are "
                            f"{', '.join(self.header)}") from None

    def labels(self, name: str) -> list[str]:
        i = self.column(name)
        return [row[i] for row in self.rows]

    def numbers(self, columns: list[str], rows: list[int] | None = None) -> np.ndarray:
        """The named columns as float64, rows in the given order (all rows by default)."""
        import numpy as np

        index = [self.column(c) for c in columns]
        order = range(len(self.rows)) if rows is None else rows
        out = np.empty((len(order), len(index)), dtype=np.float64)
        for r, k in enumerate(order):
            row = self.rows[k]
            for c, i in enumerate(index):
                try:
                    out[r, c] = float(row[i])
                except ValueError:
                    raise DataError(f"{self.path}:{self.lines[k]}: column {self.header[i]!r}: "
                                    f"non-numeric feature {row[i]!r} (drop the column with "
                                    f"data.drop_columns, or make it numeric)") from None
        if not np.isfinite(out).all():
            r, c = (int(v[0]) for v in np.nonzero(~np.isfinite(out)))
            k = order[r]
            raise DataError(f"{self.path}:{self.lines[k]}: column {columns[c]!r}: feature "
                            f"{self.rows[k][index[c]]!r} is not finite")
        return out


def read_table(path: Path) -> Table:
    """A CSV file with a header row; blank lines are skipped, cells stripped of spaces."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            header: tuple[str, ...] | None = None
            rows: list[tuple[str, ...]] = []
            lines: list[int] = []
            for record in reader:
                cells = tuple(c.strip() for c in record)
                if not any(cells):
                    continue
                if header is None:
                    header = cells
                    if len(set(header)) != len(header):
                        dup = next(h for h in header if header.count(h) > 1)
                        raise DataError(f"{path}:{reader.line_num}: column {dup!r} appears "
                                        f"twice in the header")
                    continue
                if len(cells) != len(header):
                    raise DataError(f"{path}:{reader.line_num}: {len(cells)} fields, the header "
                                    f"has {len(header)}")
                rows.append(cells)
                lines.append(reader.line_num)
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text file") from None
    except csv.Error as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc.strerror})") from None
    if header is None:
        raise DataError(f"{path}: empty file (expected a header row and data rows)")
    if not rows:
        raise DataError(f"{path}: no data rows after the header")
    return Table(path, header, tuple(rows), tuple(lines))


def sorted_classes(labels: list[str]) -> tuple[str, ...]:
    """Class names in a stable order: numerically when every label is a number, else as text."""
    unique = set(labels)
    try:
        return tuple(sorted(unique, key=float))
    except ValueError:
        return tuple(sorted(unique))
