"""Strict YAML: typed dataclasses from a mapping, ``--set`` overrides, named config files.

The generic half of the config system, shared by the experiment configs
(`movinet_tf.config`) and the search configs (`movinet_tf.nas.config`):

* `read_yaml` parses with a `yaml.SafeLoader` that refuses a key given twice;
* `from_dict` builds a dataclass field by field: an unknown or misspelled key is
  a `ValueError` that names it, lists the valid keys of its section and suggests
  the closest one; a value of the wrong type is a `TypeError` naming the key and
  the expected type; a value outside a field's ``choices`` is a `ValueError`;
* `parse_override` / `apply_overrides` write ``--set a.b=value`` (a YAML scalar)
  into the raw mapping before it is checked;
* `find_yaml` turns a bare name or a path into an existing file.
"""
import copy
import dataclasses
import difflib
import os
import pathlib
import types
import typing

import yaml


def _type_name(tp):
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return f"list of {_type_name(args[0])}" if args else "list"
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def _convert(value, tp, key):
    """Checks `value` against the annotation `tp` and returns it converted.

    Raises:
        TypeError: naming `key` and the expected type.
        ValueError: for unknown keys inside a nested section.
    """
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key)
            except TypeError:
                continue  # try the next member of the union; all failing is reported below
        raise TypeError(f"Config key {key!r} expects {_type_name(tp)}, got {value!r}.")
    if dataclasses.is_dataclass(tp):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise TypeError(
                f"Config key {key!r} expects a mapping of {tp.__name__} fields, got {value!r}.")
        return _from_dict(tp, value, key)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"Config key {key!r} expects {_type_name(tp)}, got {value!r}.")
        item_type = [a for a in typing.get_args(tp) if a is not Ellipsis]
        items = [_convert(v, item_type[0], f"{key}[{i}]") if item_type else v
                 for i, v in enumerate(value)]
        return list(items) if origin is list else tuple(items)
    if tp is bool:
        if not isinstance(value, bool):
            raise TypeError(f"Config key {key!r} expects bool (true/false), got {value!r}.")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"Config key {key!r} expects int, got {value!r}.")
        return value
    if tp is float:
        # PyYAML reads '3e-5' (no dot) as a string; accept what float() accepts.
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"Config key {key!r} expects float, got {value!r}.")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise TypeError(f"Config key {key!r} expects str, got {value!r}.")
        return value
    if tp is typing.Any:
        return value
    raise TypeError(f"Config key {key!r} has an unsupported annotation {tp!r}.")


def _unknown_key_error(key, section, valid):
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    where = f"in {section!r}" if section else "at the top level"
    hint = f" Did you mean {close[0]!r}?" if close else ""
    full = f"{section}.{key}" if section else key
    return ValueError(
        f"Unknown config key {full!r} {where}.{hint} Valid keys: {', '.join(valid)}.")


def _from_dict(cls, values, section=""):
    """Builds dataclass `cls` from a mapping, strictly."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    for key in values:
        if key not in fields:
            raise _unknown_key_error(str(key), section, list(fields))
    kwargs = {}
    for name, value in values.items():
        key = f"{section}.{name}" if section else name
        converted = _convert(value, hints[name], key)
        choices = fields[name].metadata.get("choices")
        if choices is not None and converted not in choices:
            shown = ", ".join("null" if c is None else str(c) for c in choices)
            raise ValueError(f"Config key {key!r} is {converted!r}; expected one of: {shown}.")
        kwargs[name] = converted
    return cls(**kwargs)


def from_dict(cls, values, section=""):
    """Builds any config dataclass `cls` from a mapping, strictly (unknown keys, types, choices).

    The field annotations give the types and ``metadata={"choices": (...)}`` the allowed
    values; the experiment configs (`movinet_tf.config`) and the search configs
    (`movinet_tf.nas.config`) both use it.
    """
    return _from_dict(cls, values, section)


def parse_override(text):
    """Splits ``"a.b=value"`` into (["a", "b"], parsed value).

    The value is parsed as a YAML scalar (``10`` -> int, ``true`` -> bool,
    ``null`` -> None, ``[clip, stream]`` -> list); anything else stays a string.

    Raises:
        ValueError: when `text` has no ``=`` or an empty key.
    """
    if not isinstance(text, str) or "=" not in text:
        raise ValueError(f"--set expects key=value (e.g. train.steps=100), got {text!r}.")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ValueError(f"--set has an empty key or key part in {text!r}; expected e.g. train.steps=100.")
    try:
        value = yaml.load(raw, Loader=StrictLoader) if raw.strip() else ""  # noqa: S506
    except yaml.YAMLError as error:
        raise ValueError(f"--set {text!r}: cannot parse the value {raw!r} as YAML: {error}") from error
    return key.split("."), value


def apply_overrides(values, overrides):
    """Returns a copy of the raw mapping `values` with ``--set`` overrides applied."""
    values = copy.deepcopy(values) if values else {}
    for text in overrides or ():
        path, value = parse_override(text)
        node = values
        for i, part in enumerate(path[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise TypeError(
                    f"--set {text!r}: {'.'.join(path[:i + 1])!r} is {child!r}, not a section.")
            node = child
        node[path[-1]] = value
    return values


class StrictLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses a key given twice in one mapping.

    PyYAML keeps the last of two equal keys, so a second ``train:`` section
    would silently replace the first one whole.
    """

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:  # An unhashable key; the base class reports it.
                continue
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None,
                    f"duplicate key {key!r} (first at line {first.line + 1}, again at line "
                    f"{key_node.start_mark.line + 1})", key_node.start_mark)
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def read_yaml(stream, name):
    """Parses YAML text or a file object strictly: safe tags only, no duplicate keys.

    Raises:
        ValueError: naming `name` and the line of the problem.
    """
    try:
        return yaml.load(stream, Loader=StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as error:
        raise ValueError(f"Config {name!r} is not valid YAML: {error}") from error


def override_key(text):
    """The dotted key of a ``--set key=value`` text."""
    return text.split("=", 1)[0].strip() if isinstance(text, str) else str(text)


def find_yaml(name, directories, what="Config"):
    """Turns ``a0_stream``, ``a0_stream.yaml`` or a path into an existing file.

    Args:
        name: a path, or a bare name looked up in `directories` (``.yaml`` added).
        directories: the folders a bare name is looked up in, in order.
        what: how errors name the file (e.g. "Config", "Search config").

    Raises:
        FileNotFoundError: naming what was looked for, where, and the closest
            file of `directories`.
    """
    if not name:
        raise ValueError(f"No {what.lower()} given; pass --config NAME or a path.")
    path = pathlib.Path(os.path.expanduser(str(name)))
    if path.is_file():
        return path
    file_name = path.name if path.suffix in (".yaml", ".yml") else path.name + ".yaml"
    if path.parent == pathlib.Path("."):
        for directory in directories:
            if (directory / file_name).is_file():
                return directory / file_name
    shipped = yaml_names(directories)
    close = difflib.get_close_matches(file_name, shipped, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    searched = ", ".join(str(d) for d in directories) or "(no configs directory found)"
    raise FileNotFoundError(
        f"{what} {str(name)!r} not found: it is not a file, and {file_name!r} is not in "
        f"{searched}.{hint} Shipped configs: {', '.join(shipped)}.")


def yaml_names(directories):
    """Sorted names of the ``*.yaml`` files in `directories`."""
    names = set()
    for directory in directories:
        names.update(p.name for p in directory.glob("*.yaml"))
    return sorted(names)


def load_yaml_file(path, overrides=()):
    """The raw mapping of a YAML file (strictly read), and it with ``--set`` overrides applied."""
    with open(path, encoding="utf-8") as f:
        file_values = read_yaml(f, str(path))
    return file_values, apply_overrides(file_values, overrides)
