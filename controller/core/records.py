"""The site model without pydantic, for the daemon (issue 16).

pydantic costs the daemon about 13 MiB (its modules, its schema machinery, its core library) that it
would carry for years only to validate a file it reads at start and at a reload. So `flux-edge run`
validates in a short-lived child process (`controller.config.isolated`) and receives the validated tree
as records: instances of the very same config classes, built on the plain base class below instead of
pydantic's. Their attributes, properties, methods, equality and immutability are the models'; what a
record cannot do is validate, so constructing one is refused rather than done unchecked.

`activate()` must run before `controller.core.schema` is first imported (the CLI does it for `run`); any
other process, the tests included, keeps real pydantic models. The names below stand in for pydantic's
in the class bodies only: markers that validation needs and a record does not.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

ACTIVE = False


def activate() -> None:
    """Build the config classes as records in this process. Refused once they are built as models."""
    global ACTIVE
    if "controller.core.schema" in sys.modules and not ACTIVE:
        raise RuntimeError("the config classes are already built with pydantic in this process")
    ACTIVE = True


class FrozenRecordError(AttributeError):
    pass


class BaseModel:
    """A validated config object received from the validator: read-only, compared by value."""

    def __init__(self, **_: Any) -> None:
        raise TypeError(f"{type(self).__name__} is built by the validator (controller.config.isolated), "
                        "not constructed in the daemon: an unvalidated config would skip its checks")

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenRecordError(f"{type(self).__name__} is immutable (a reload replaces it)")

    def __delattr__(self, name: str) -> None:
        raise FrozenRecordError(f"{type(self).__name__} is immutable (a reload replaces it)")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.__dict__ == other.__dict__

    def __hash__(self) -> int:  # as pydantic's frozen models: unhashable when a field is a list
        return hash((type(self), *self.__dict__.values()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.__dict__.items())})"

    def model_copy(self, *, update: dict[str, Any] | None = None) -> Any:
        return _record(type(self), {**self.__dict__, **(update or {})})


def _record(cls: type, fields: dict[str, Any]) -> Any:
    obj: Any = object.__new__(cls)
    object.__setattr__(obj, "__dict__", fields)
    return obj


def rebuild(module: str, qualname: str, fields: dict[str, Any]) -> Any:
    """Unpickling a model the validator sent: the same class, looked up here, filled with its fields."""
    cls: Any = importlib.import_module(module)
    for part in qualname.split("."):
        cls = getattr(cls, part)
    return _record(cls, fields)


class SecretStr:
    """A secret's value, kept out of reprs (pydantic's SecretStr, as the daemon uses it)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretStr) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "SecretStr('**********')" if self._value else "SecretStr('')"

    def __str__(self) -> str:
        return "**********" if self._value else ""

    def __len__(self) -> int:
        return len(self._value)


def secret(value: str) -> SecretStr:
    """Unpickling a secret the validator sent."""
    return SecretStr(value)


class _Marker:
    """What a class body writes for validation (a field's constraints, a validator): inert here, and
    keeping none of it (a field's description would otherwise stay in memory for good)."""

    def __init__(self, *_: Any, **__: Any) -> None:
        pass


def Field(*args: Any, **kwargs: Any) -> Any:
    return _Marker(*args, **kwargs)


class BeforeValidator(_Marker):
    pass


class AfterValidator(_Marker):
    pass


ConfigDict = dict
ValidationInfo = Any


class PydanticCustomError(ValueError):
    def __init__(self, kind: str, message: str, context: dict[str, Any] | None = None) -> None:
        super().__init__(message.format(**(context or {})))


def _keep(*_: Any, **__: Any) -> Callable[[Any], Any]:
    return lambda f: f


field_validator = _keep
model_validator = _keep
