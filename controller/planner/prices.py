"""A price schedule file (`planner.price.type: schedule`): CSV `period_start,price_p_per_kwh` with a header
row and `#` comments, or JSON `[{"period_start": ISO, "price_p_per_kwh": x}, ...]` (or an object with
those under "prices"). Unreadable or garbage files raise PriceFileError naming the file and the row; a
non-finite price counts as missing."""

from __future__ import annotations

import csv
import json
import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from controller.core.clock import parse_utc

HALF_HOUR = timedelta(minutes=30)


class PriceFileError(ValueError):
    """A price file or feed that cannot be used: the message names it and what is wrong."""


def _entry(start: Any, price: Any, where: str) -> tuple[datetime, float | None]:
    try:
        when = parse_utc(start)
    except ValueError as exc:
        raise PriceFileError(f"{where}: period_start: {exc}") from None
    if isinstance(price, str):
        price = price.strip() or None
    if price is None:
        return when, None
    try:
        value = float(price)
    except (TypeError, ValueError):
        raise PriceFileError(f"{where}: price_p_per_kwh: not a number: {price!r}") from None
    return when, value if math.isfinite(value) else None


def parse_prices(text: str, name: str) -> dict[datetime, float]:
    out: dict[datetime, float] = {}
    stripped = text.lstrip()
    entries: list[tuple[datetime, float | None]] = []
    if stripped.startswith(("[", "{")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PriceFileError(f"{name}: not JSON: {exc}") from None
        items = data.get("prices") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise PriceFileError(f"{name}: expected a list of {{period_start, price_p_per_kwh}}")
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise PriceFileError(f"{name}: entry {i}: expected an object")
            entries.append(_entry(item.get("period_start"), item.get("price_p_per_kwh"), f"{name}: entry {i}"))
    else:
        reader = csv.DictReader([ln for ln in text.splitlines() if not ln.lstrip().startswith("#")])
        if reader.fieldnames is None or not {"period_start", "price_p_per_kwh"} <= set(reader.fieldnames):
            raise PriceFileError(f"{name}: the header row must name period_start and price_p_per_kwh")
        for i, row in enumerate(reader, start=1):
            entries.append(_entry(row.get("period_start"), row.get("price_p_per_kwh"), f"{name}: data row {i}"))
    for when, value in entries:
        if value is not None:
            out[when] = value
    return out


def parse_agile(body: Any, value: str = "value_exc_vat", name: str = "price feed") -> dict[datetime, float]:
    """An Octopus Agile-style answer as half-hour prices (a longer entry covers each half-hour it spans).
    Raises PriceFileError for anything else; entries with a non-finite or missing value are skipped."""
    results = body.get("results") if isinstance(body, dict) else None
    if not isinstance(results, list):
        raise PriceFileError(f"{name}: expected {{\"results\": [...]}}")
    out: dict[datetime, float] = {}
    for i, item in enumerate(results):
        if not isinstance(item, dict):
            raise PriceFileError(f"{name}: results.{i}: expected an object")
        start, price = _entry(item.get("valid_from"), item.get(value), f"{name}: results.{i}")
        end = start + HALF_HOUR
        if item.get("valid_to") is not None:
            end, _ = _entry(item.get("valid_to"), None, f"{name}: results.{i}")
        if price is None:
            continue
        t = start
        for _ in range(48 * 7):  # a week at most per entry: a far-off valid_to is garbage, not a loop
            if t >= end:
                break
            out[t] = price
            t += HALF_HOUR
    return out


def fetch_agile(url: str, value: str = "value_exc_vat", timeout_s: float = 10.0) -> dict[datetime, float]:
    """One blocking fetch (the CLI's). Raises PriceFileError for no answer, a non-200 one or garbage."""
    import httpx

    try:
        response = httpx.get(url, timeout=timeout_s)
    except httpx.HTTPError as exc:
        raise PriceFileError(f"{url}: no answer: {exc}") from None
    return agile_answer(response.status_code, response.text, url, value)


def agile_answer(status: int, text: str, url: str, value: str) -> dict[datetime, float]:
    if status != 200:
        raise PriceFileError(f"{url}: HTTP {status}")
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        raise PriceFileError(f"{url}: not JSON") from None
    return parse_agile(body, value, url)


def read_prices(path: Path) -> dict[datetime, float]:
    try:
        return parse_prices(path.read_text(encoding="utf-8"), str(path))
    except OSError as exc:
        raise PriceFileError(f"{path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise PriceFileError(f"{path}: not a text file") from None
