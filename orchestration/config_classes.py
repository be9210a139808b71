"""Dagster run config and resource classes built from the package dataclasses, so that a default lives in one
place (the dataclass) and the UI's config form shows the same fields. Imports no asset: both the assets and the
resources build their config here."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, TypeVar

from dagster import Config, ConfigurableResource
from pydantic import Field, create_model

T = TypeVar("T")


def config_class(source: type, name: str, overrides: Mapping[str, Any] | None = None,
                 base: type[Config | ConfigurableResource] = Config) -> type:
    """A Dagster ``Config`` (or, with ``base``, a ``ConfigurableResource`` subclass) with the fields and defaults of
    the dataclass ``source``, some defaults replaced by ``overrides`` (the environment's).

    The package dataclass stays the one place where defaults live. Dagster config has no datetime or
    Literal type, so datetimes become ISO strings and Literals plain strings (``source`` validates them).
    """
    hints = typing.get_type_hints(source)
    fields: dict[str, Any] = {}
    for field in dataclasses.fields(source):
        own = field.default_factory() if field.default is dataclasses.MISSING else field.default
        kind, default = hints[field.name], (overrides or {}).get(field.name, own)
        if datetime in (kind, *typing.get_args(kind)):
            kind = str if kind is datetime else str | None
            default = default.isoformat() if isinstance(default, datetime) else default
        elif typing.get_origin(kind) is Literal:
            kind = str
        fields[field.name] = (kind, Field(default=default))
    # A resource base documents itself (the UI shows it); a plain Config says which dataclass it mirrors.
    doc = f"Run config of {source.__name__}." if base is Config else base.__doc__
    return create_model(name, __base__=base, __doc__=doc, **fields)


def from_config(config: Config | ConfigurableResource, target: type[T]) -> T:
    """The dataclass ``target`` built from a :func:`config_class` config (ISO strings back to datetimes)."""
    hints = typing.get_type_hints(target)
    values = config.model_dump()
    for key, value in values.items():
        if isinstance(value, str) and datetime in (hints[key], *typing.get_args(hints[key])):
            values[key] = datetime.fromisoformat(value)
    return target(**values)
