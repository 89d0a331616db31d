"""services.common.http.csv_export: chunked CSV, the formula guard, the streamed response."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
from flask import Flask

from services.common.http import csv_export


@pytest.mark.parametrize("text", ["=1+1", "+62811", "-2", "@SUM(A1)", "\tx", "\rx"])
def test_cells_a_spreadsheet_would_run_get_a_leading_quote(text: str) -> None:
    assert csv_export.safe_cell(text) == "'" + text


@pytest.mark.parametrize("text", ["", "Batik Sekar", "1-2", "a=b", "'=quoted"])
def test_other_cells_stay_as_typed(text: str) -> None:
    assert csv_export.safe_cell(text) == text


def test_header_rides_with_the_first_batch_then_one_chunk_per_batch() -> None:
    got = list(csv_export.chunks(["a", "b"], [[(1, "x,y")], [], [(2, 'q"')]]))
    assert len(got) == 3
    assert got[1] == ""
    assert list(csv.reader(io.StringIO("".join(got)))) == [["a", "b"], ["1", "x,y"],
                                                          ["2", 'q"']]


def test_no_batches_still_sends_the_header() -> None:
    assert list(csv_export.chunks(["a"], [])) == ["a\r\n"]


def test_response_makes_the_first_chunk_before_streaming() -> None:
    made: list[int] = []

    def body() -> Iterator[str]:
        made.append(1)
        raise LookupError("unknown campaign")
        yield ""  # pragma: no cover - a generator

    app = Flask(__name__)
    with app.test_request_context(), pytest.raises(LookupError):
        csv_export.response(body(), "x.csv")
    assert made == [1]


def test_response_streams_every_chunk_as_an_attachment() -> None:
    app = Flask(__name__)

    @app.get("/x")
    def x() -> object:
        return csv_export.response(csv_export.chunks(["n"], ([(i,)] for i in range(3))),
                                   "n.csv")

    r = app.test_client().get("/x")
    assert r.mimetype == "text/csv"
    assert r.headers["Content-Disposition"] == 'attachment; filename="n.csv"'
    assert r.get_data(as_text=True) == "n\r\n0\r\n1\r\n2\r\n"
