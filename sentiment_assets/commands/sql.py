"""`sentiment sql`: SQL over the published snapshot, bounded so that no query hogs the machine.

The snapshot (lib/versions/publish.py) is an in-memory DuckDB, never the live warehouse: the pipeline
holds that file read-write and DuckDB would refuse (or block) a second process. A query gets
a timeout, a memory limit and one statement (unless --multi); Ctrl-C stops it at once.
"""

from __future__ import annotations

import argparse
import decimal
import json
import math
import shutil
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING

from sentiment_assets.environment import current_settings

if TYPE_CHECKING:  # imported where used: the CLI imports this module for its argument types
    import duckdb

    from sentiment_assets.lib.versions.publish import QueryResult

EXIT_ERROR = 2
EXIT_TIMEOUT = 124  # as timeout(1) reports it
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C
# How long an interrupted query may take to unwind before the command gives up on it.
UNWIND_S = 5.0
COLUMN_GAP = "  "
# A column never shrinks below this, even if the line then overflows a very narrow terminal.
NARROWEST_COLUMN = 6


class QueryStopped(Exception):
    """The query was interrupted; the message is the one line to print."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def command_sql(args: argparse.Namespace) -> int:
    if sum([args.query is not None, args.tables, args.describe is not None]) != 1:
        print("error: give a QUERY, --tables or --describe TABLE (one of them)", file=sys.stderr)
        return EXIT_ERROR
    try:
        return show_answer(args)
    except KeyboardInterrupt:  # Ctrl-C before the query started (imports, loading)
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def show_answer(args: argparse.Namespace) -> int:
    from sentiment_assets.lib.versions.publish import HistoryError, QueryMemoryError

    try:
        result = answer(args)
    except QueryStopped as stop:
        print(stop, file=sys.stderr)
        return stop.exit_code
    except QueryMemoryError:
        print(
            f"error: the query needed more than its {args.memory_limit} memory limit and was "
            "stopped (--memory-limit to change it)",
            file=sys.stderr,
        )
        return EXIT_ERROR
    except HistoryError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    print_result(result, args.format)
    return 0


def answer(args: argparse.Namespace) -> QueryResult:
    from sentiment_assets.lib.versions.publish import open_history

    con = open_history(current_settings().published_dir, args.memory_limit)
    try:
        sql = statement(args, con)
    except BaseException:
        con.close()
        raise
    return run_bounded(con, sql, args.timeout)


def statement(args: argparse.Namespace, con: duckdb.DuckDBPyConnection) -> str:
    """The SQL to run: the user's own (one statement unless --multi), or the listing asked for."""
    tables = published_tables(con)
    if args.tables:
        return " UNION ALL ".join(
            f'SELECT \'{name}\' AS "table", count(*) AS "rows" FROM {name}' for name in tables
        )
    if args.describe is not None:
        name = resolve_table(args.describe, tables)
        schema, _, table = name.partition(".")
        return (
            'SELECT column_name AS "column", data_type AS "type" FROM information_schema.columns '
            f"WHERE table_schema = '{schema}' AND table_name = '{table}' "
            "ORDER BY ordinal_position"
        )
    if not args.multi:
        require_one_statement(args.query)
    return args.query


def published_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        "SELECT schema_name || '.' || table_name FROM duckdb_tables() ORDER BY 1"
    ).fetchall()
    return [name for (name,) in rows]


def resolve_table(name: str, tables: list[str]) -> str:
    """`name`, qualified or not, as one of `tables` (schema.table)."""
    from sentiment_assets.lib.versions.publish import HistoryQueryError

    wanted = name.strip().lower()
    for table in tables:
        if wanted in (table, table.partition(".")[2]):
            return table
    raise HistoryQueryError(f"no table {name!r}; the tables are: {', '.join(tables)}")


def require_one_statement(sql: str) -> None:
    import duckdb

    from sentiment_assets.lib.versions.publish import HistoryQueryError

    try:
        count = len(duckdb.extract_statements(sql))
    except duckdb.Error as error:
        raise HistoryQueryError(str(error)) from error
    if count != 1:
        raise HistoryQueryError(
            f"{count} statements given; one is run at a time (--multi runs them all)"
        )


def run_bounded(con: duckdb.DuckDBPyConnection, sql: str, timeout_s: float) -> QueryResult:
    """Run `sql` on a worker thread; interrupt it at the timeout or on Ctrl-C; close `con`.

    The main thread only waits: Python runs a signal handler on the main thread, between
    bytecodes, so a query running there would hold Ctrl-C until it finished.
    """
    from sentiment_assets.lib.versions.publish import run_query

    outcome: dict[str, object] = {}
    stops: list[QueryStopped] = []

    def work() -> None:
        try:
            outcome["result"] = run_query(con, sql)
        except Exception as error:  # raised again on the main thread
            outcome["error"] = error

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        stops.append(QueryStopped("interrupted: the query was stopped", EXIT_INTERRUPTED))
        con.interrupt()

    worker = threading.Thread(target=work, name="sql-query", daemon=True)
    # Only the main thread may set a handler (main() called from another thread has no Ctrl-C).
    on_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_interrupt) if on_main else None
    try:
        worker.start()
        worker.join(timeout_s or None)
        if worker.is_alive() and not stops:
            stops.append(timed_out(timeout_s))
            con.interrupt()
        worker.join(UNWIND_S)
    finally:
        if on_main:
            signal.signal(signal.SIGINT, previous)
        if not worker.is_alive():  # else close() would wait for the query to unwind
            con.close()
    if "result" in outcome:
        return outcome["result"]  # type: ignore[return-value]
    if stops:
        raise stops[0]
    raise outcome["error"]  # type: ignore[misc]


def timed_out(timeout_s: float) -> QueryStopped:
    return QueryStopped(
        f"error: the query ran past its {timeout_s:g} s timeout and was stopped "
        "(--timeout to change it)",
        EXIT_TIMEOUT,
    )


def print_result(result: QueryResult, fmt: str) -> None:
    if fmt == "csv":
        import pandas as pd

        from sentiment_assets.lib.data.batch_io import safe_csv

        # dtype=object keeps each value as DuckDB gave it (an int column with NULLs stays int).
        sys.stdout.write(safe_csv(pd.DataFrame(result.rows, columns=result.columns, dtype=object)))
    elif fmt == "json":
        print(json.dumps(records(result), indent=2, default=iso_text))
    elif result.rows:
        print(render_table(result, shutil.get_terminal_size().columns))
    else:
        print("(no rows)")


def records(result: QueryResult) -> list[dict[str, object]]:
    def plain(value: object) -> object:
        if isinstance(value, float) and math.isnan(value):
            return None  # NaN is not JSON
        return value

    return [
        {column: plain(value) for column, value in zip(result.columns, row, strict=True)}
        for row in result.rows
    ]


def iso_text(value: object) -> str:
    """Dates and timestamps as ISO 8601, anything else JSON lacks as str()."""
    isoformat = getattr(value, "isoformat", None)
    return isoformat() if callable(isoformat) else str(value)


def render_table(result: QueryResult, width: int) -> str:
    """Aligned columns within `width` characters: the widest columns give way first, and a
    cell cut short ends with an ellipsis. Numbers are right-aligned."""
    cells = [[cell_text(value) for value in row] for row in result.rows]
    natural = [
        max([len(name), *(len(row[i]) for row in cells)]) for i, name in enumerate(result.columns)
    ]
    widths = fit_widths(natural, width)
    numeric = [
        all(is_number(row[i]) for row in result.rows if row[i] is not None)
        for i in range(len(result.columns))
    ]

    def line(texts: list[str]) -> str:
        shown = [
            shorten(text, w).rjust(w) if right else shorten(text, w).ljust(w)
            for text, w, right in zip(texts, widths, numeric, strict=True)
        ]
        return COLUMN_GAP.join(shown).rstrip()

    return "\n".join([line(result.columns), *(line(row) for row in cells)])


def fit_widths(natural: list[int], width: int) -> list[int]:
    """Column widths from their natural ones, the widest cut down one character at a time
    until the line (gaps included) fits `width`."""
    widths = list(natural)
    room = width - len(COLUMN_GAP) * (len(widths) - 1)
    while sum(widths) > room:
        widest = max(range(len(widths)), key=widths.__getitem__)
        if widths[widest] <= NARROWEST_COLUMN:
            break
        widths[widest] -= 1
    return widths


def shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def is_number(value: object) -> bool:
    return isinstance(value, int | float | decimal.Decimal) and not isinstance(value, bool)


def cell_text(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.6g}"
    # One line per row: a newline inside a text would break the table.
    return str(value).replace("\r", "\\r").replace("\n", "\\n").replace("\t", " ")
