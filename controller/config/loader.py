"""Load a site file and report every problem at once as `FILE:LINE:COL: dotted.path: message`.

YAML is composed into nodes first so that every value keeps its position; pydantic's error
locations are then mapped back to those positions. Discriminator tags pydantic puts into its
locations (`devices.0.powerpack.host`) are stripped so the path is the one the person typed.
"""

from __future__ import annotations

import hashlib
import os
import types
import typing
import zoneinfo
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path as FsPath
from typing import Any

import yaml
from pydantic import BaseModel, SecretStr, ValidationError

from controller.config.hard_limits import HardLimitsError, configured_hard_limits, widenings
from controller.config.loaded import ConfigError, LoadedSite, Problem, UnsetSecret
from controller.config.site import SiteConfig
from controller.core.config import DEFAULT_TIMEZONE, ENV_REF, SECRET_REF, ConfigModel, Path, did_you_mean

UNITS = {"_s": "seconds", "_kw": "kW", "_kwh": "kWh", "_mwh": "MWh", "_min": "minutes", "_bytes": "bytes",
         "_days": "days", "_m3": "m3", "_c": "degC"}


# What an unset secret holds when a command that never uses secrets loads the file (`defer_secrets`).
DEFERRED_SECRET = "unset-in-this-environment"


class PlaceholderEnv(Mapping[str, str]):
    """The environment, with `placeholder` for every variable it lacks: for a file whose secrets are
    someone else's to resolve (a command that never uses them; the daemon, for a pushed file)."""

    def __init__(self, base: Mapping[str, str], placeholder: str = DEFERRED_SECRET) -> None:
        self._base = base
        self._placeholder = placeholder

    def __getitem__(self, key: str) -> str:
        return self._base.get(key, self._placeholder)

    def __contains__(self, key: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self._base)

    def __len__(self) -> int:
        return len(self._base)


# --- YAML with positions ---------------------------------------------------------------------------


# Bounds on a site file (issue 15: a 281-byte alias bomb took 20 s and 2.5 GB; 500-deep nesting and a
# self-referencing alias raised RecursionError). Real site files are a few kB, a few levels deep, with
# a handful of aliases at most.
MAX_SITE_FILE_BYTES = 256 * 1024
MAX_ALIASES = 100
MAX_DEPTH = 32
MAX_NODES = 20_000  # values after aliases are expanded


class _TooBig(Exception):
    def __init__(self, mark: yaml.Mark | None, message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps `16:00` a string (YAML 1.1 reads it as the base-60 number 960), with an alias
    budget and a nesting limit while composing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _TooBig(self.peek_event().start_mark,  # type: ignore[no-untyped-call]
                              f"more than {MAX_ALIASES} aliases")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _TooBig(self.peek_event().start_mark,  # type: ignore[no-untyped-call]
                              f"nested more than {MAX_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if not (tag.endswith((":int", ":float")) and rx.match("16:00"))]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass
class _Doc:
    data: Any
    value_marks: dict[Path, tuple[int, int]]
    key_marks: dict[Path, tuple[int, int]]
    env_refs: list[Path]


def _pos(mark: yaml.Mark | None) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


def _compose(text: str, filename: str, problems: list[Problem]) -> _Doc | None:
    if len(text) > MAX_SITE_FILE_BYTES:
        problems.append(Problem(filename, 1, 1, "(document)",
                                f"the file is {len(text)} characters; a site file is at most {MAX_SITE_FILE_BYTES}"))
        return None
    try:
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
    except _TooBig as exc:
        problems.append(Problem(filename, *_pos(exc.mark), "(yaml)", exc.message))
        return None
    except yaml.MarkedYAMLError as exc:
        line, col = _pos(exc.problem_mark or exc.context_mark)
        problems.append(Problem(filename, line, col, "(yaml)", _one_line(f"{exc.problem or exc.context}")))
        return None
    except yaml.YAMLError as exc:
        problems.append(Problem(filename, 1, 1, "(yaml)", _one_line(str(exc))))
        return None
    except (RecursionError, MemoryError) as exc:
        problems.append(Problem(filename, 1, 1, "(yaml)", f"the document cannot be read: {type(exc).__name__}"))
        return None
    if root is None:
        problems.append(Problem(filename, 1, 1, "(document)", "the file is empty"))
        return None
    doc = _Doc(None, {}, {}, [])
    constructor = _Loader("")
    built = [0]

    def build(node: yaml.Node, path: Path) -> Any:
        built[0] += 1
        if built[0] > MAX_NODES:
            raise _TooBig(node.start_mark, f"more than {MAX_NODES} values once aliases are expanded")
        if len(path) > 2 * MAX_DEPTH:
            raise _TooBig(node.start_mark, "an alias refers to itself or nests too deep")
        doc.value_marks[path] = _pos(node.start_mark)
        if isinstance(node, yaml.MappingNode):
            constructor.flatten_mapping(node)
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = build(key_node, (*path, "<key>"))
                if isinstance(key, list | dict):
                    problems.append(Problem(filename, *_pos(key_node.start_mark), _dotted(path),
                                            "mapping keys must be plain values"))
                    continue
                kpath = (*path, key)
                if key in out:
                    problems.append(Problem(filename, *_pos(key_node.start_mark), _dotted(kpath),
                                            "duplicate key (the earlier value would be silently replaced)"))
                doc.key_marks[kpath] = _pos(key_node.start_mark)
                out[key] = build(value_node, kpath)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [build(item, (*path, i)) for i, item in enumerate(node.value)]
        value = constructor.construct_object(node, deep=True)
        if isinstance(value, bytes):
            raise _TooBig(node.start_mark, "!!binary values are not allowed in a site file")
        if isinstance(value, str) and ENV_REF.fullmatch(value.strip()):
            doc.env_refs.append(path)
        return value

    try:
        doc.data = build(root, ())
    except _TooBig as exc:
        problems.append(Problem(filename, *_pos(exc.mark), "(yaml)", exc.message))
        return None
    except yaml.MarkedYAMLError as exc:
        problems.append(Problem(filename, *_pos(exc.problem_mark), "(yaml)", _one_line(f"{exc.problem}")))
        return None
    except (yaml.YAMLError, RecursionError, TypeError, ValueError) as exc:
        problems.append(Problem(filename, 1, 1, "(yaml)", _one_line(f"cannot be read: {exc}")))
        return None
    return doc


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300]


# --- mapping pydantic locations to what the person wrote ---------------------------------------------


def _dotted(path: Path) -> str:
    return ".".join(str(p) for p in path if p != "<key>") or "(document)"


def _unwrap(ann: Any) -> Any:
    while typing.get_origin(ann) is typing.Annotated:
        ann = typing.get_args(ann)[0]
    return ann


def _union_members(ann: Any) -> list[Any]:
    ann = _unwrap(ann)
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        return [_unwrap(a) for a in typing.get_args(ann) if a is not type(None)]
    return [ann]


def _tag_of(model: Any) -> str | None:
    if isinstance(model, type) and issubclass(model, BaseModel):
        field = model.model_fields.get("type")
        if field is not None and typing.get_origin(field.annotation) is typing.Literal:
            return str(typing.get_args(field.annotation)[0])
    return None


def _field(model: type[BaseModel], key: Any) -> Any:
    for name, f in model.model_fields.items():
        if key in (name, f.alias):
            return f.annotation
    return None


def _resolve(loc: tuple[Any, ...], data: Any = None) -> tuple[Path, Any, Any]:
    """Clean path of a location, the annotation found there, and the model holding its last key.

    `loc` is either pydantic's (discriminator tags included) or a plain data path, in which case
    `data` (the parsed document) tells which member of a tagged union applies.
    """
    ann: Any = SiteConfig
    parent: Any = None
    path: list[str | int] = []
    items = list(loc)
    while items:
        item = items.pop(0)
        members = _union_members(ann)
        if len(members) > 1:
            tagged = {_tag_of(m): m for m in members}
            if item in tagged:
                ann = tagged[item]
                continue
            type_tag = data.get("type") if isinstance(data, dict) else None
            if type_tag in tagged:
                items.insert(0, item)
                ann = tagged[type_tag]
                continue
            path.append(item)
            ann = None
            continue
        ann = members[0]
        origin = typing.get_origin(ann)
        if isinstance(ann, type) and issubclass(ann, BaseModel) and isinstance(item, str):
            parent = ann
            path.append(item)
            ann = _field(ann, item)
        elif origin in (list, tuple) and isinstance(item, int):
            path.append(item)
            ann = typing.get_args(ann)[0]
        elif origin is dict:
            if item == "[key]":
                continue
            path.append(item)
            ann = typing.get_args(ann)[1]
        else:
            if isinstance(item, int | str) and not str(item).startswith(("function-", "[")):
                path.append(item)
            ann = None
        data = _child(data, item)
    return tuple(path), ann, parent


def _child(data: Any, key: Any) -> Any:
    if isinstance(data, dict):
        return data.get(key)
    if isinstance(data, list) and isinstance(key, int) and 0 <= key < len(data):
        return data[key]
    return None


def _is_secret(ann: Any) -> bool:
    return any(m is SecretStr for m in _union_members(ann))


def _unit_hint(path: Path, value: Any) -> str:
    if not path or not isinstance(value, str):
        return ""
    name = str(path[-1])
    for suffix, unit in UNITS.items():
        if name.endswith(suffix):
            return f"; give a plain number in {unit}, without a unit (got '{value}')"
    return f"; got '{value}'"


def _mark(doc: _Doc, path: Path, *, key: bool = False) -> tuple[int, int]:
    if key and path in doc.key_marks:
        return doc.key_marks[path]
    p = path
    while p:
        if p in doc.value_marks:
            return doc.value_marks[p]
        p = p[:-1]
    return doc.value_marks.get((), (1, 1))


def _from_validation(exc: ValidationError, doc: _Doc, filename: str) -> Iterator[Problem]:
    for err in exc.errors(include_url=False, include_input=True):
        path, ann, parent = _resolve(tuple(err["loc"]))
        kind = err["type"]
        msg = err["msg"]
        if kind == "extra_forbidden":
            fields = [f.alias or n for n, f in parent.model_fields.items()] if parent is not None else []
            yield Problem(filename, *_mark(doc, path, key=True), _dotted(path),
                          f"unknown key '{path[-1]}'{did_you_mean(str(path[-1]), fields)}")
            continue
        if kind == "missing":
            yield Problem(filename, *_mark(doc, path[:-1]), _dotted(path), "required field is missing")
            continue
        if kind in ("union_tag_invalid", "union_tag_not_found"):
            ctx = err.get("ctx", {})
            expected = str(ctx.get("expected_tags", ""))
            tag = ctx.get("tag")
            tpath = (*path, "type")
            if tag is None:
                yield Problem(filename, *_mark(doc, path), _dotted(tpath),
                              f"required field is missing; one of {expected}")
            else:
                choices = [t.strip(" '") for t in expected.split(",")]
                yield Problem(filename, *_mark(doc, tpath), _dotted(tpath),
                              f"unknown type '{tag}'{did_you_mean(str(tag), choices)}; expected one of {expected}")
            continue
        if kind.startswith(("float_", "int_")) and "parsing" in kind and not _is_secret(ann):
            msg += _unit_hint(path, err.get("input"))
        elif kind == "value_error":
            msg = msg.removeprefix("Value error, ")
        yield Problem(filename, *_mark(doc, path), _dotted(path), msg)


def _walk_models(obj: Any, path: Path) -> Iterator[tuple[Path, ConfigModel]]:
    if isinstance(obj, ConfigModel):
        yield path, obj
        for name in type(obj).model_fields:
            alias = type(obj).model_fields[name].alias or name
            yield from _walk_models(getattr(obj, name), (*path, alias))
    elif isinstance(obj, list | tuple):
        for i, item in enumerate(obj):
            yield from _walk_models(item, (*path, i))
    elif isinstance(obj, dict):
        for k, item in obj.items():
            yield from _walk_models(item, (*path, k))


def _semantic(config: SiteConfig, doc: _Doc, filename: str) -> Iterator[Problem]:
    for path, model in _walk_models(config, ()):
        for rel, message in model.problems():
            full = (*path, *rel)
            yield Problem(filename, *_mark(doc, full), _dotted(full), message)


def _misplaced_env_refs(doc: _Doc, filename: str) -> Iterator[Problem]:
    for path in doc.env_refs:
        _, ann, _ = _resolve(path, doc.data)
        if ann is not None and not _is_secret(ann):
            yield Problem(filename, *_mark(doc, path), _dotted(path),
                          "${...} environment references are only allowed in secret fields")


def _valid_tz(name: str) -> bool:
    if len(name) > 64:
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _hard_limit_problems(config: SiteConfig, doc: _Doc, filename: str) -> Iterator[Problem]:
    try:
        hard = configured_hard_limits()
    except HardLimitsError as exc:
        yield Problem(filename, 1, 1, "(hard limits)", f"cannot check the local hard limits: {exc}")
        return
    if hard is None:
        return
    source, limits = hard
    for path, message in widenings(config, limits, source):
        yield Problem(filename, *_mark(doc, path), _dotted(path), message)


def _unset_secrets(doc: _Doc, filename: str, env: Mapping[str, str]) -> Iterator[UnsetSecret]:
    for path in doc.env_refs:
        _, ann, _ = _resolve(path, doc.data)
        value = _child_at(doc.data, path)
        ref = SECRET_REF.fullmatch(value.strip()) if isinstance(value, str) else None
        if ann is not None and _is_secret(ann) and ref is not None and ref.group(1) not in env:
            yield UnsetSecret(ref.group(1), Problem(filename, *_mark(doc, path), _dotted(path),
                                                    f"environment variable {ref.group(1)} is not set here"))


def _child_at(data: Any, path: Path) -> Any:
    for key in path:
        data = _child(data, key)
    return data


def parse_site(text: str, filename: str = "<site>", env: Mapping[str, str] | None = None) -> SiteConfig:
    """Validate a site file's text. Raises ConfigError with every problem found."""
    return _parse(text, filename, env, defer_secrets=False)[0]


def _parse(text: str, filename: str, env: Mapping[str, str] | None,
           *, defer_secrets: bool) -> tuple[SiteConfig, tuple[UnsetSecret, ...]]:
    problems: list[Problem] = []
    doc = _compose(text, filename, problems)
    if doc is None:
        raise ConfigError(problems)
    if not isinstance(doc.data, dict):
        problems.append(Problem(filename, *_mark(doc, ()), "(document)", "the site file must be a mapping of sections"))
        raise ConfigError(problems)
    site = doc.data.get("site")
    tz = site.get("timezone") if isinstance(site, dict) else None
    # An invalid site timezone is reported once, at the site; periods then fall back to the default.
    context: dict[str, Any] = {"timezone": tz if isinstance(tz, str) and _valid_tz(tz) else DEFAULT_TIMEZONE}
    base_env: Mapping[str, str] = os.environ if env is None else env
    unset: tuple[UnsetSecret, ...] = ()
    if defer_secrets:
        unset = tuple(_unset_secrets(doc, filename, base_env))
        context["env"] = PlaceholderEnv(base_env)
    elif env is not None:
        context["env"] = env
    config: SiteConfig | None = None
    try:
        config = SiteConfig.model_validate(doc.data, context=context)
    except ValidationError as exc:
        problems.extend(_from_validation(exc, doc, filename))
    problems.extend(_misplaced_env_refs(doc, filename))
    if config is not None:
        # Cross-field checks need a structurally valid tree: they run once the structure is fixed.
        problems.extend(_semantic(config, doc, filename))
        problems.extend(_hard_limit_problems(config, doc, filename))
    if problems:
        raise ConfigError(sorted(set(problems), key=lambda p: (p.line, p.col, p.path, p.message)))
    assert config is not None
    return config, unset


def load_site(path: str | FsPath, env: Mapping[str, str] | None = None, *,
              defer_secrets: bool = False) -> LoadedSite:
    """The site file, validated. With `defer_secrets` (commands that never use a secret: validate, decide,
    backtest, ...) a secret whose variable is unset is not an error: it holds DEFERRED_SECRET and is listed
    in `unset_secrets`; the daemon, which uses them, loads without it."""
    p = FsPath(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError([Problem(str(path), 1, 1, "(file)", exc.strerror or str(exc))]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([Problem(str(path), 1, 1, "(file)", f"not UTF-8 text: {exc.reason}")]) from None
    config, unset = _parse(text, str(path), env, defer_secrets=defer_secrets)
    return LoadedSite(config, str(path), hashlib.sha256(raw).hexdigest(), unset)
