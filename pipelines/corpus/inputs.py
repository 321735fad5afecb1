"""The corpus readers' inputs: files, folders, globs, ``save_to_disk`` folders and ``hf:name[:config]`` resolved
into :class:`Unit` s (one file, one parquet row group, one arrow file, one streamed hub dataset), the pieces of
reading work that the shard job processes in parallel.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rwkv_data.errors import DependencyMissing, InputFormatError
from rwkv_data.jsonfile import read_json
from rwkv_data.pipelines.corpus.documents import ReadOptions
from rwkv_data.pipelines.corpus.streams import file_kind

TEXT_SUFFIXES = (".jsonl", ".jsonl.zst", ".jsonl.zstd", ".jsonl.gz", ".txt", ".txt.zst", ".txt.gz")
SUPPORTED = (*TEXT_SUFFIXES, ".parquet")


@dataclass(frozen=True, slots=True)
class Unit:
    """A unit of reading work: a file, one parquet row group, one arrow file, or a streamed hub dataset."""

    kind: Literal["jsonl", "txt", "parquet", "arrow", "hub"]
    path: str
    index: int = -1  # parquet row group (-1: the whole file, used when its footer cannot be read)
    rows: int = -1  # rows in the row group / arrow file when known

    def describe(self) -> str:
        """Human-readable name used in progress and error messages."""
        return f"{self.path} row group {self.index}" if self.kind == "parquet" and self.index >= 0 else self.path

    def fingerprint(self) -> dict[str, Any]:
        """Identity of the unit's input: path, size and mtime (hub datasets: name only)."""
        fp: dict[str, Any] = {"kind": self.kind, "path": self.path, "index": self.index}
        if self.kind != "hub":
            st = os.stat(self.path)
            fp.update(size=st.st_size, mtime_ns=st.st_mtime_ns)
        return fp


def _hf_folder(path: Path) -> bool:
    return (path / "state.json").is_file() or (path / "dataset_dict.json").is_file()


def expand_inputs(inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], opts: ReadOptions) -> list[Unit]:
    """Resolve files, folders, globs and ``hf:name[:config]`` into an ordered, de-duplicated unit list.

    Folders are walked recursively in sorted order (hidden entries skipped); a folder holding a
    ``save_to_disk`` dataset becomes its arrow files (``opts.hf_split`` picks the split of a DatasetDict).
    """
    if isinstance(inputs, str | os.PathLike):
        inputs = [inputs]
    units: list[Unit] = []
    seen: set[tuple[str, int]] = set()
    for raw in inputs:
        spec = os.fspath(raw)
        if not spec.strip():
            raise InputFormatError(f"an empty input name ({spec!r}); give files, folders, globs or hf:NAME")
        if spec.startswith("hf:"):
            found = [Unit("hub", spec)]
        elif any(c in spec for c in "*?["):
            matches = sorted(glob.glob(spec, recursive=True))
            if not matches:
                raise InputFormatError(f"{spec}: the pattern matches no file")
            found = [u for m in matches for u in _expand_path(Path(m), opts, explicit=False)]
        else:
            found = _expand_path(Path(spec), opts, explicit=True)
        for u in found:
            if (u.path, u.index) not in seen:
                seen.add((u.path, u.index))
                units.append(u)
    return units


def _expand_path(path: Path, opts: ReadOptions, explicit: bool) -> list[Unit]:
    if path.is_dir():
        if _hf_folder(path):
            return _arrow_units(path, opts)
        out: list[Unit] = []
        seen = {os.path.realpath(path)}  # folders linked in are followed, each once (a link loop ends)
        for root, dirs, files in os.walk(path, followlinks=True):
            keep = []
            for d in sorted(d for d in dirs if not d.startswith(".")):
                real = os.path.realpath(os.path.join(root, d))
                if real not in seen:
                    seen.add(real)
                    keep.append(d)
            dirs[:] = keep
            rootp = Path(root)
            if rootp != path and _hf_folder(rootp):
                out += _arrow_units(rootp, opts)
                dirs[:] = []
                continue
            out += [u for f in sorted(files) if not f.startswith(".") and f.endswith(SUPPORTED)
                    for u in _expand_path(rootp / f, opts, explicit=False)]
        return out
    if not path.exists():
        raise InputFormatError(f"{path}: no such file or folder")
    if not path.is_file():  # a FIFO, a device, a socket: no end, or no size to resume by
        raise InputFormatError(f"{path}: not a regular file ({file_kind(path.stat().st_mode)}); copy the data to a "
                               "file first")
    name = path.name
    if name.endswith(".parquet"):
        return _parquet_units(path)
    if name.endswith(TEXT_SUFFIXES):
        return [Unit("txt" if ".txt" in name else "jsonl", str(path))]
    if explicit:
        raise InputFormatError(f"{path}: unsupported input type; supported: {', '.join(SUPPORTED)}, a "
                               "datasets save_to_disk folder, or hf:NAME[:CONFIG]")
    return []


def _parquet_units(path: Path) -> list[Unit]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - pyarrow is a core dependency
        raise DependencyMissing("reading .parquet needs pyarrow: pip install pyarrow") from exc
    try:
        md = pq.ParquetFile(path).metadata
    except Exception:  # noqa: BLE001 - any footer failure: surfaced with the file name when the unit is read
        return [Unit("parquet", str(path), -1)]
    return [Unit("parquet", str(path), i, md.row_group(i).num_rows) for i in range(md.num_row_groups)]


def _json_file(path: Path, what: str) -> Any:
    """The JSON object of a datasets metadata file, or an InputFormatError naming it."""
    why = f"not the {what} that datasets.save_to_disk writes; save the dataset again"
    try:
        value = read_json(path)
    except ValueError as exc:
        raise InputFormatError(f"{path}: {exc}, {why}") from None
    if not isinstance(value, dict):
        raise InputFormatError(f"{path}: a JSON {type(value).__name__}, {why}")
    return value



def _arrow_units(path: Path, opts: ReadOptions) -> list[Unit]:
    if (path / "dataset_dict.json").is_file():
        meta = path / "dataset_dict.json"
        splits = _json_file(meta, "dataset dictionary").get("splits")
        if not isinstance(splits, list) or not all(isinstance(x, str) for x in splits):
            raise InputFormatError(f"{meta}: no list of split names under 'splits'; save the dataset again")
        if opts.hf_split not in splits:
            raise InputFormatError(f"{path}: no split {opts.hf_split!r}; it has {splits} (use --hf-split)")
        path = path / opts.hf_split
    meta = path / "state.json"
    state = _json_file(meta, "dataset state")
    if state.get("_indices_data_files"):
        raise InputFormatError(f"{path}: dataset has an indices mapping; save it with flatten_indices() first")
    files = state.get("_data_files")
    if not isinstance(files, list) or not all(isinstance(f, dict) and isinstance(f.get("filename"), str)
                                              and f["filename"] and os.sep not in f["filename"] for f in files):
        raise InputFormatError(f"{meta}: '_data_files' is not a list of {{\"filename\": NAME}} of files in the folder; "
                               "save the dataset again")
    return [Unit("arrow", str(path / f["filename"])) for f in files]

