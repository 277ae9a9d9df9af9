"""A config tree as plain JSON data, for comparing the daemon's records with pydantic's models. Imports
no pydantic: the daemon's side of the comparison runs it in a process that must not load it."""

from __future__ import annotations

from datetime import date, datetime, time
from enum import Enum
from typing import Any
from uuid import UUID


def tree(v: Any, models: tuple[type, ...], secrets: tuple[type, ...]) -> Any:
    if isinstance(v, models):
        return {"__class__": f"{type(v).__module__}.{type(v).__qualname__}",
                **{k: tree(x, models, secrets) for k, x in vars(v).items()}}
    if isinstance(v, secrets):
        return {"__secret__": v.get_secret_value()}  # type: ignore[attr-defined]
    if isinstance(v, list | tuple):
        return [tree(x, models, secrets) for x in v]
    if isinstance(v, dict):
        return {str(k): tree(x, models, secrets) for k, x in v.items()}
    if isinstance(v, Enum):
        return v.value
    if isinstance(v, datetime | date | time | UUID):
        return str(v)
    return v
