"""The config classes' one door to pydantic: real pydantic, or the daemon's records (`records.py`).

Every config module imports these names from here, never from pydantic, so that `flux-edge run`, which
validates in a child process, builds the same classes without loading pydantic at all.
"""

from __future__ import annotations

import inspect
import sys
import typing
from typing import TYPE_CHECKING, Any

from controller.core import records

if TYPE_CHECKING or not records.ACTIVE:
    from pydantic import (
        AfterValidator,
        BaseModel,
        BeforeValidator,
        ConfigDict,
        Field,
        SecretStr,
        ValidationInfo,
        field_validator,
        model_validator,
    )
    from pydantic_core import PydanticCustomError
else:
    from controller.core.records import (
        AfterValidator,
        BaseModel,
        BeforeValidator,
        ConfigDict,
        Field,
        PydanticCustomError,
        SecretStr,
        ValidationInfo,
        field_validator,
        model_validator,
    )

__all__ = ["AfterValidator", "BaseModel", "BeforeValidator", "ConfigDict", "Field", "PydanticCustomError",
           "SecretStr", "ValidationInfo", "field_validator", "literal_values", "model_validator"]


def literal_values(cls: type, field: str) -> tuple[Any, ...]:
    """The values of a config class's `Literal[...]` field (a device's or mode's `type`)."""
    if not records.ACTIVE:
        return typing.get_args(cls.model_fields[field].annotation)  # type: ignore[attr-defined]
    for klass in cls.__mro__:
        annotation = inspect.get_annotations(klass).get(field)
        if annotation is not None:
            if isinstance(annotation, str):  # postponed (`from __future__ import annotations`): as get_type_hints does
                annotation = eval(annotation, vars(sys.modules[klass.__module__]))
            return typing.get_args(annotation)
    raise TypeError(f"{cls.__name__} has no field {field}")
