"""CSV exports: rows streamed as a Flask response, with cells that spreadsheets would run as
formulas neutralised (CSV injection)."""
from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from flask import Response, stream_with_context

# A cell starting with one of these is a formula to Excel/LibreOffice/Sheets.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(text: str) -> str:
    """Text typed by a person, as a cell no spreadsheet will evaluate: a leading quote."""
    return "'" + text if text[:1] in _FORMULA_START else text


def chunks(header: Sequence[str], batches: Iterable[Iterable[Sequence[Any]]]) -> Iterator[str]:
    """CSV text, one chunk per batch of rows; the header comes with the first chunk (alone
    when there are no batches). Asking for the first chunk runs the first batch, so a
    generator that validates or audits before its first batch does so before a response
    starts."""
    buf = io.StringIO()
    out = csv.writer(buf)
    out.writerow(header)
    sent = False
    for batch in batches:
        out.writerows(batch)
        sent = True
        yield _take(buf)
    if not sent:
        yield _take(buf)


def _take(buf: io.StringIO) -> str:
    text = buf.getvalue()
    buf.seek(0)
    buf.truncate()
    return text


def response(body: Iterator[str], filename: str) -> Response:
    """A streamed text/csv attachment. The first chunk is made now: an error it raises (a bad
    cursor, an unknown id, a refused scope) answers as an error, not as a broken 200."""
    first = next(body)
    return Response(stream_with_context(itertools.chain([first], body)), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})
