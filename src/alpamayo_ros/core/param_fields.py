"""Parameter fields: a frozen config dataclass declares each of its parameters once, with default, range and meaning.

Every core module that has settings owns one frozen dataclass whose fields are made with ``param(...)``. The node's
ROS parameters, ``config/alpamayo.yaml``, the README table and the launch arguments are all derived from those
fields (``core.params``), and ``field_problems`` checks a config instance against its own declared ranges, so a
range is written in exactly one place and checked by exactly one function.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

PARAM_KEY = "alpamayo_param"
When = Literal["configure", "live"]


@dataclass(frozen=True)
class ParamInfo:
    """What a parameter means and what it accepts.

    ``when``: "configure" parameters are read on the lifecycle configure transition; "live" ones apply on change.
    ``aliases``: other values accepted for a choice (YAML 1.1 reads ``on``/``off`` as booleans, so a choice
    spelled on/off also accepts true/false).
    ``length``: the required element count of a list parameter.
    """

    description: str
    min_value: float | None = None
    max_value: float | None = None
    choices: tuple[str, ...] | None = None
    when: When = "configure"
    aliases: tuple[tuple[Any, str], ...] = ()
    length: int | None = None

    def range_text(self) -> str:
        """ "a | b" for choices, "[min, max]" for numbers, "" when unconstrained."""
        if self.choices is not None:
            return " | ".join(self.choices)
        if self.min_value is not None or self.max_value is not None:
            return f"[{self.min_value}, {self.max_value}]"
        return ""

    def canonical(self, value: Any) -> Any:
        """The value an alias stands for (``True`` -> "on"), else the value itself."""
        for alias, target in self.aliases:
            if type(value) is type(alias) and value == alias:
                return target
        return value


def param(
    default: Any,
    description: str,
    *,
    min_value: float | None = None,
    max_value: float | None = None,
    choices: tuple[str, ...] | None = None,
    when: When = "configure",
    aliases: Mapping[Any, str] | None = None,
    length: int | None = None,
) -> Any:
    """A dataclass field that is also a parameter (``default`` must be immutable: use tuples for lists)."""
    info = ParamInfo(
        description=description,
        min_value=min_value,
        max_value=max_value,
        choices=choices,
        when=when,
        aliases=tuple((aliases or {}).items()),
        length=length,
    )
    return dataclasses.field(default=default, metadata={PARAM_KEY: info})


def param_fields(config_type: type[Any]) -> Iterator[tuple[dataclasses.Field[Any], ParamInfo]]:
    """The parameter fields of a config dataclass, in declaration order (fields without ``param`` are skipped)."""
    for fld in dataclasses.fields(config_type):
        info = fld.metadata.get(PARAM_KEY)
        if info is not None:
            yield fld, info


def value_problem(name: str, info: ParamInfo, value: Any) -> str | None:
    """Why ``value`` is out of the declared range of parameter ``name``, or None (types are checked elsewhere)."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{name} = {value} is not finite"
    if isinstance(value, int | float) and not isinstance(value, bool):
        if info.min_value is not None and value < info.min_value:
            return f"{name} = {value} is below the minimum {info.min_value}"
        if info.max_value is not None and value > info.max_value:
            return f"{name} = {value} is above the maximum {info.max_value}"
    if info.choices is not None and value not in info.choices:
        return f"{name} = {value!r} is not one of {', '.join(info.choices)}"
    if info.length is not None and isinstance(value, tuple | list) and len(value) != info.length:
        return f"{name} = {list(value)} must have {info.length} elements"
    if isinstance(value, tuple | list) and not all(math.isfinite(float(v)) for v in value):
        return f"{name} = {list(value)} has a non-finite element"
    return None


def field_problems(config: Any, prefix: str = "") -> list[str]:
    """Every parameter field of ``config`` outside its declared range, each naming ``prefix.field`` and the value."""
    problems = []
    for fld, info in param_fields(type(config)):
        problem = value_problem(f"{prefix}{fld.name}", info, getattr(config, fld.name))
        if problem is not None:
            problems.append(problem)
    return problems
