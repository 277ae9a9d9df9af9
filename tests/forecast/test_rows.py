"""The history CSV reader: the spec's columns, gzip, comments, one-line errors naming file and line."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from controller.forecast.rows import COLUMNS, HistoryFileError, PeriodRow, read_history_csv
from tests.forecast.helpers import utc

HEADER = ",".join(COLUMNS)


def write(tmp_path: Path, body: str, name: str = "h.csv") -> Path:
    p = tmp_path / name
    data = f"# a comment\n{HEADER}\n{body}"
    if name.endswith(".gz"):
        p.write_bytes(gzip.compress(data.encode()))
    else:
        p.write_text(data)
    return p


def test_reads_plain_and_gzip_with_unknown_cells(tmp_path: Path) -> None:
    body = "2026-06-01T01:00:00+01:00,10,0,1,0,500,,5.5,-20\n2026-06-01T00:30:00+00:00,8,1,0,2,498,3,6,\n"
    for name in ("h.csv", "h.csv.gz"):
        rows = read_history_csv(write(tmp_path, body, name))
        assert rows == [PeriodRow(utc("2026-06-01T00:00:00+00:00"), 10, 0, 1, 0, 500, None, 5.5, -20),
                        PeriodRow(utc("2026-06-01T00:30:00+00:00"), 8, 1, 0, 2, 498, 3, 6, None)]
    # battery removed: import - export - charge + discharge
    assert rows[0].net_load_kwh() == 9 and rows[1].net_load_kwh() == 9


BAD = [
    ("not a number", "2026-06-01T00:00:00+00:00,x,0,0,0,1,,1,1", "h.csv:3: site_import_kwh: 'x' is not a number"),
    ("negative energy", "2026-06-01T00:00:00+00:00,-1,0,0,0,1,,1,1", "h.csv:3: site_import_kwh: -1 is negative"),
    ("no offset", "2026-06-01T00:00:00,1,0,0,0,1,,1,1", "h.csv:3: period_start: '2026-06-01T00:00:00' has no UTC"),
    ("not a half-hour", "2026-06-01T00:10:00+00:00,1,0,0,0,1,,1,1", "h.csv:3: period_start: '2026-06-01T00:10:00"),
    ("NaN", "2026-06-01T00:00:00+00:00,nan,0,0,0,1,,1,1", "h.csv:3: site_import_kwh: 'nan' is not a finite"),
    ("cells", "2026-06-01T00:00:00+00:00,1,0", "h.csv:3: 3 cells, the header has 9"),
]


@pytest.mark.parametrize(("why", "line", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_line_is_one_line_error(tmp_path: Path, why: str, line: str, message: str) -> None:
    with pytest.raises(HistoryFileError) as info:
        read_history_csv(write(tmp_path, line + "\n"))
    text = str(info.value)
    assert "\n" not in text
    assert text.rsplit("/", maxsplit=1)[-1].startswith(message)


def test_repeated_period_and_missing_file(tmp_path: Path) -> None:
    line = "2026-06-01T00:00:00+00:00,1,0,0,0,1,,1,1\n"
    with pytest.raises(HistoryFileError, match=r"h.csv:4: period_start .* repeated"):
        read_history_csv(write(tmp_path, line + line))
    with pytest.raises(HistoryFileError, match="cannot read"):
        read_history_csv(tmp_path / "missing.csv")
