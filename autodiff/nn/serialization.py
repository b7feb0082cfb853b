"""Save parameters to a file and load them back, by name.

Two formats, chosen by the file's suffix:

- ``.npz``: NumPy's zip of arrays, one entry per parameter name. Compact and
  exact. It is read with ``allow_pickle=False``, so a file from someone else
  cannot run code when you load it.
- ``.json``: readable text, as in the exercise, which stores each value with
  ``value.tolist()``. Ours maps each name to its dtype, shape and value, so
  that a load can check them. Floats are written with enough digits to come
  back bit for bit.

Both writes are atomic: the data go to a temporary file in the target
folder, which is flushed to the disk and then replaces the target in one
step (:func:`os.replace`). A crash, a kill or a power cut during the write
leaves the old file as it was; a failed write (a full disk) raises an
:class:`OSError` that names the file. A process killed while saving leaves
its hidden temporary file ``.NAME.RANDOM.part`` beside the target; nothing
reads it, and it can be deleted.

Loading checks every name, shape and dtype first, and changes nothing
unless all of them fit; otherwise it raises one error that lists every
mismatch. A damaged file, one of another kind, an empty file or a folder
raises a :class:`ValueError` that names the file and says what was wrong.
An ``.npz`` file has a CRC-32 checksum for each array, so a damaged value is
caught; a JSON file has none, so a changed digit loads as another number.

The parameters are given explicitly: a :class:`~autodiff.nn.Module` (names
like ``"layers.0.weight"``), a mapping ``{name: Parameter}``, or the loss
Variable of a graph, as in the exercise's ``dump_parameters(loss, file)``;
then the parameters are those the loss depends on, in the graph's
topological order, named ``"0"``, ``"1"``, ... (The exercise's version
ignores its ``loss`` argument and reads the global ``J`` instead.)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from autodiff.core import Parameter, Variable, topological_order
from autodiff.nn._files import atomic_file

__all__ = ["ParameterMismatchError", "named_parameters", "save_parameters", "load_parameters"]

_JSON_FORMAT = "autodiff-parameters"


class ParameterMismatchError(ValueError):
    """The file's parameters do not fit the model; the message lists every mismatch.

    Examples
    --------
    Parameters saved from a layer with 3 inputs do not fit one with 4:

    >>> import pathlib, tempfile
    >>> from autodiff.nn import Linear
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = pathlib.Path(folder.name) / "model.npz"
    >>> _ = save_parameters(Linear(3, 2, seed=0), path)
    >>> load_parameters(Linear(4, 2, seed=0), path)
    Traceback (most recent call last):
    ...
    autodiff.nn.serialization.ParameterMismatchError: load_parameters: ...model.npz does not fit the model; nothing was changed.
      2 parameters in the file, 2 in the model:
      - 'weight': shape (3, 2) in the file, (4, 2) in the model
    >>> folder.cleanup()
    """


def named_parameters(source: Any) -> dict[str, Parameter]:
    """Name the parameters of a Module, a mapping, or the graph of a loss.

    Examples
    --------
    >>> x = Parameter(2.0)
    >>> J = x * x + Parameter(1.0)
    >>> list(named_parameters(J))
    ['0', '1']
    """
    if isinstance(source, Variable):
        found = [v for v in topological_order(source) if isinstance(v, Parameter)]
        return {str(i): p for i, p in enumerate(found)}
    if hasattr(source, "named_parameters") and callable(source.named_parameters):
        result = dict(source.named_parameters())
    elif isinstance(source, Mapping):
        result = dict(source)
    else:
        raise TypeError(
            f"expected a Module, a mapping {{name: Parameter}} or a loss Variable, "
            f"but got {type(source).__name__}."
        )
    for name, parameter in result.items():
        if not isinstance(name, str) or not isinstance(parameter, Parameter):
            raise TypeError(
                f"parameter names must be str and values Parameters, but got "
                f"{name!r}: {type(parameter).__name__}."
            )
    return result


def _format_of(path: Path, where: str) -> str:
    suffix = path.suffix.lower()
    if suffix not in (".npz", ".json"):
        raise ValueError(
            f"{where}: cannot tell the format of {path}; use a name ending in "
            ".npz or .json."
        )
    return suffix[1:]


def save_parameters(source: Any, path: str | os.PathLike[str]) -> Path:
    """Write the parameters of ``source`` to ``path`` (``.npz`` or ``.json``), atomically.

    Parameters
    ----------
    source
        A Module, a mapping ``{name: Parameter}``, or a loss Variable.
    path
        The file; its suffix chooses the format. The folder must exist.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    OSError
        If the file cannot be written (a full disk, a missing folder); the
        message names it, and the old file is left as it was.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from autodiff.nn import Linear
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> model = Linear(3, 2, seed=0)
    >>> save_parameters(model, folder / "model.npz").name
    'model.npz'
    >>> sorted(np.load(folder / "model.npz").files)
    ['bias', 'weight']
    """
    path = Path(path)
    kind = _format_of(path, "save_parameters")
    parameters = named_parameters(source)
    if kind == "npz":
        arrays = {name: p.value for name, p in parameters.items()}

        with atomic_file(path, "save_parameters") as file:
            np.savez(file, **arrays)  # type: ignore[arg-type]  # the stubs expect allow_pickle
    else:
        document = {
            "format": _JSON_FORMAT,
            "parameters": {
                name: {"dtype": str(p.dtype), "shape": list(p.shape), "value": p.value.tolist()}
                for name, p in parameters.items()
            },
        }
        data = json.dumps(document).encode()
        with atomic_file(path, "save_parameters") as file:
            file.write(data)
    return path


_ZIP_STARTS = (b"PK\x03\x04", b"PK\x05\x06")  # a zip archive, and an empty one


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file; ``ValueError`` if it is damaged."""
    with open(path, "rb") as file:
        start = file.read(4)
        if not start.startswith(_ZIP_STARTS):
            what = "it is empty." if not start else (
                "it does not start as a zip archive does, with the bytes PK. "
                "Is it a file of another kind with a .npz name?")
            raise ValueError(f"load_parameters: {path} is not an .npz file: {what}")
        file.seek(0)
        try:
            with np.load(file, allow_pickle=False) as data:
                return {name: data[name] for name in data.files}
        # Damaged bytes make zipfile and NumPy raise errors of many kinds:
        # BadZipFile, a CRC-32 mismatch among them, EOFError, zlib.error,
        # ValueError, OSError, NotImplementedError, RuntimeError, even
        # tokenize.TokenError from the parser of an array's header.
        except Exception as error:
            raise ValueError(
                f"load_parameters: {path} is damaged or incomplete "
                f"({type(error).__name__}: {error}); save it again."
            ) from error


def _to_array(path: Path, name: str, value: Any, dtype: Any) -> np.ndarray:
    try:
        return np.asarray(value, dtype=dtype)
    except (TypeError, ValueError, OverflowError) as error:
        raise ParameterMismatchError(
            f"load_parameters: in {path}, the value of {name!r} is damaged ({error})."
        ) from None


def _array_from_entry(path: Path, name: str, entry: Any) -> np.ndarray:
    """One entry ``{"dtype": ..., "shape": [...], "value": [...]}`` of a JSON file."""
    if not isinstance(entry, dict) or not {"dtype", "shape", "value"} <= entry.keys():
        found = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
        raise ParameterMismatchError(
            f"load_parameters: in {path}, the entry {name!r} is damaged: it needs "
            f"a dtype, a shape and a value, but holds {found}."
        )
    value = _to_array(path, name, entry["value"], entry["dtype"])
    shape = entry["shape"]
    if not isinstance(shape, list) or not all(isinstance(n, int) for n in shape):
        raise ParameterMismatchError(
            f"load_parameters: in {path}, the shape of {name!r} is damaged: "
            f"{shape!r} is not a list of integers."
        )
    if value.shape != tuple(shape):
        raise ParameterMismatchError(
            f"load_parameters: in {path}, {name!r} declares shape {tuple(shape)} but "
            f"its value has shape {value.shape}."
        )
    return value


def _read_json(path: Path, parameters: dict[str, Parameter]) -> dict[str, np.ndarray]:
    """The arrays of a ``.json`` file, by name; for the exercise's list, by position."""
    try:
        document = json.loads(path.read_bytes())
    except ValueError as error:  # also UnicodeDecodeError and json.JSONDecodeError
        raise ValueError(
            f"load_parameters: {path} is not valid JSON ({error}); it may be "
            "damaged or incomplete, or of another kind with a .json name."
        ) from None
    if isinstance(document, list):
        # The exercise's format: a bare list of values, in graph order.
        if len(document) != len(parameters):
            raise ParameterMismatchError(
                f"load_parameters: {path} holds {len(document)} values (a list, the "
                f"exercise's format), but the model has {len(parameters)} parameters."
            )
        # The list has no dtypes: take the model's (the shapes are still checked).
        return {
            name: _to_array(path, name, value, p.dtype)
            for (name, p), value in zip(parameters.items(), document)
        }
    if (
        not isinstance(document, dict)
        or document.get("format") != _JSON_FORMAT
        or not isinstance(document.get("parameters"), dict)
    ):
        raise ParameterMismatchError(
            f"load_parameters: {path} is not a parameter file written by "
            "save_parameters (no \"format\": \"autodiff-parameters\" entry with "
            "its \"parameters\")."
        )
    return {
        name: _array_from_entry(path, name, entry)
        for name, entry in document["parameters"].items()
    }


def _read(path: Path, parameters: dict[str, Parameter]) -> dict[str, np.ndarray]:
    """The arrays in the file, by name."""
    kind = _format_of(path, "load_parameters")
    if path.is_dir():
        raise ValueError(f"load_parameters: {path} is a folder, not a parameter file.")
    if not path.exists():
        raise FileNotFoundError(f"load_parameters: no file {path}.")
    return _read_npz(path) if kind == "npz" else _read_json(path, parameters)


def load_parameters(target: Any, path: str | os.PathLike[str]) -> None:
    """Load the parameters in ``path`` into ``target``, by name, all or nothing.

    Every name in the file must be a parameter of ``target`` and vice versa,
    with the same shape and dtype. All of that is checked before any value
    changes; the values are then copied into the existing arrays. On any
    error, ``target`` is unchanged.

    Parameters
    ----------
    target
        A Module, a mapping ``{name: Parameter}``, or a loss Variable.
    path
        A file written by :func:`save_parameters`.

    Raises
    ------
    ParameterMismatchError
        Listing every missing, unexpected, misshapen or mistyped parameter,
        or naming a damaged entry of a JSON file.
    ValueError
        If the file is damaged or cut short, of another kind, empty, or a
        folder; the message names it.
    FileNotFoundError
        If there is no such file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from autodiff.nn import Linear
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.json"
    >>> _ = save_parameters(Linear(3, 2, seed=0), path)
    >>> fresh = Linear(3, 2, seed=1)
    >>> load_parameters(fresh, path)
    >>> bool((fresh.weight.value == Linear(3, 2, seed=0).weight.value).all())
    True
    """
    path = Path(path)
    parameters = named_parameters(target)
    arrays = _read(path, parameters)
    problems = []
    for name in parameters:
        if name not in arrays:
            problems.append(f"missing in the file: {name!r}")
    for name, array in arrays.items():
        if name not in parameters:
            problems.append(f"not a parameter of the model: {name!r}")
            continue
        expected = parameters[name].value
        if array.shape != expected.shape:
            problems.append(
                f"{name!r}: shape {array.shape} in the file, {expected.shape} in the model"
            )
        if array.dtype != expected.dtype:
            problems.append(
                f"{name!r}: dtype {array.dtype} in the file, {expected.dtype} in the model"
            )
    if problems:
        raise ParameterMismatchError(
            f"load_parameters: {path} does not fit the model; nothing was changed.\n"
            f"  {len(arrays)} parameters in the file, {len(parameters)} in the model:\n"
            "  - " + "\n  - ".join(problems)
        )
    for name, parameter in parameters.items():
        np.copyto(parameter.value, arrays[name])
