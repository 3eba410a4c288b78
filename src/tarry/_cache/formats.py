"""How a cached result is laid out in its entry, and read back.

The contract
------------
An entry is one file::

    magic (8 bytes)  header length H (4 bytes, little-endian)  header (H bytes of JSON)
    padding to 64 bytes | stream | padding to 64 | buffer 1 | padding to 64 | buffer 2 ...

* The **header** says what :mod:`.tidy` and ``tarry cache ls`` need without
  reading further: ``label`` (the function), ``created`` (epoch seconds),
  ``seconds`` (how long the task ran), ``kind`` (how the stream is decoded:
  ``pickle``, ``parquet``, ``parquet-series``, ``parquet-series-unnamed``),
  ``crc`` and ``stream`` (the stream's CRC-32 and length), ``buffers``
  (their lengths) and ``payload`` (bytes from the end of the padding to
  the end of the file).
* The **stream** is the value pickled with cloudpickle, protocol 5, or,
  with ``cache_format="parquet"``, a pandas object as Parquet. Every
  buffer of :data:`INBAND_BELOW` bytes or more that the pickle exposes
  (a NumPy array's data, anything with ``__reduce_ex__`` returning a
  ``PickleBuffer``) is kept out of the stream, 64-byte aligned after it,
  so that it loads **memory-mapped**: a 1 GB array costs nothing until it
  is read.
* Loaded buffers are **writable and private**: the file is mapped
  copy-on-write (``mmap.ACCESS_COPY``), so a loaded array can be changed
  like a computed one, and the change never reaches the store (nor another
  run). Where a mapped file cannot be removed (Windows,
  ``TARRY_PORTABLE=1``: :func:`tarry._platform.maps_removable_files`) the
  entry is read into memory instead, so eviction is never blocked; remote
  (fsspec) stores read the bytes too. Both give writable buffers as well.
* **Damage**: the magic, the header's JSON, the file's exact length and
  the stream's CRC-32 are checked; out-of-band buffers are only
  length-checked. Checking them would read every page of a mapped array:
  for 1 GB, a CRC-32 takes 0.25 to 0.46 s where the mapped load takes
  0.1 to 0.2 ms (figures below), against the issue's goal of a second run
  within 1.1x of loading its result. Entries are written to a temporary name and
  renamed, so damage is a copy cut short (the length check) or a disk
  error. Buffers under :data:`INBAND_BELOW` (64 KiB) stay in the stream,
  covered by its CRC, for tens of microseconds: a 64 KiB array loads in
  100 to 265 us from the stream against 45 to 90 us mapped, while at
  256 KiB the stream already costs 300 to 355 us against 50.

Figures from ``python benchmarks/bench_cache_formats.py`` (1000 MB float64
array, local store in the page cache, median of 3, on the shared 2-core
machine at a load of 2 to 6; four runs): writing it out of band takes
0.8 to 1.5 s, in band 2.8 to 4.7 s (the stream copies the array, and its
CRC reads it); loading it mapped 0.1 to 0.2 ms, read into memory 0.75 to
1.3 s, mapped and then summed in full 40 to 60 ms; a CRC-32 over it 0.25
to 0.46 s.

Why pandas objects are pickled unless ``cache_format="parquet"`` asks:
their columns are NumPy (or Arrow) buffers, which the pickle keeps out of
band and a load maps, where Parquet decodes every column. A 1,000,000-row
frame of an int, a float and a string column (25 MB pickled, 12.6 MB as
Parquet; same command, ``--frame-rows``): load 0.3 ms pickled against 46 ms
from Parquet, write 12 ms against 73 ms. Parquet's strength, a file other
tools read and later pandas versions understand, matters less here: a
result's key covers the version of pandas the task called, so an upgrade
computes it again rather than loading it.

:func:`encode` makes the stream and buffers of a value, :func:`layout` the
bytes of a whole entry, :func:`read_header` and :func:`decode_entry` read
one back; :func:`check_format` checks ``f.options(cache_format=...)``.
"""

from __future__ import annotations

import json
import pickle
import sys
import zlib
from collections.abc import Sequence
from typing import Any, Final, NamedTuple

__all__ = [
    "FAMILY",
    "FORMAT",
    "FORMATS",
    "INBAND_BELOW",
    "Encoded",
    "Header",
    "check_format",
    "decode",
    "decode_entry",
    "encode",
    "layout",
    "read_header",
]

#: the content of a store's FORMAT file; a store with another is refused
FORMAT: Final = "tarry-cache 2"
#: what every tarry store's FORMAT starts with, whatever its version
FAMILY: Final = "tarry-cache "
#: ``cache_format`` names: "auto" is pickle (its buffers mapped); "parquet" is Parquet for the
#: pandas objects it holds exactly, else pickle
FORMATS: Final = ("auto", "pickle", "parquet")
#: buffers smaller than this stay in the pickle stream, where the CRC covers them; loading
#: one costs about what mapping it does (see the module's figures)
INBAND_BELOW: Final = 64 * 1024
MAGIC: Final = b"TARRYC\x00\x02"
_ALIGN: Final = 64
_PREFIX: Final = len(MAGIC) + 4
#: pandas' nullable dtypes, which Parquet keeps as they are
_NULLABLE: Final = frozenset(
    [f"{sign}Int{bits}" for sign in ("", "U") for bits in (8, 16, 32, 64)]
    + ["Float32", "Float64", "boolean"]
)
#: what buffers come as: bytes, a bytearray, a slice of a mapped file
Bytes = bytes | bytearray | memoryview


class Encoded(NamedTuple):
    """A value as an entry holds it."""

    kind: str
    stream: bytes
    buffers: list[memoryview]


class Header(NamedTuple):
    """An entry's header, and where its data starts in the file."""

    meta: dict[str, Any]
    start: int

    @property
    def size(self) -> int:
        """The length the whole entry must have."""
        return self.start + int(self.meta["payload"])


def check_format(value: object) -> str:
    """``f.options(cache_format=...)``: one of :data:`FORMATS`.

    Examples
    --------
    >>> check_format("pickle")
    'pickle'
    >>> check_format("json")
    Traceback (most recent call last):
    ...
    ValueError: unknown cache_format 'json'; choose one of: auto, pickle, parquet
    """
    if value not in FORMATS:
        raise ValueError(f"unknown cache_format {value!r}; choose one of: {', '.join(FORMATS)}")
    if value == "parquet":
        from tarry._extras import PARQUET

        PARQUET.check()
    return str(value)


def encode(value: Any, fmt: str = "auto") -> Encoded:
    """``value`` as a stream and out-of-band buffers, in format ``fmt``.

    Examples
    --------
    >>> big = pickle.PickleBuffer(bytearray(100_000))  # what a NumPy array's data gives
    >>> encoded = encode({"data": big, "name": "x"})
    >>> encoded.kind, [len(b) for b in encoded.buffers]
    ('pickle', [100000])
    >>> back = decode(encoded.kind, encoded.stream, encoded.buffers)
    >>> back["name"], bytes(back["data"]) == bytes(100_000)
    ('x', True)
    """
    if fmt == "parquet":
        parquet = _parquet(value)
        if parquet is not None:
            return parquet
    import cloudpickle

    buffers: list[memoryview] = []

    def out_of_band(buffer: pickle.PickleBuffer) -> bool:
        raw = buffer.raw()
        if raw.nbytes < INBAND_BELOW:
            return True  # in the stream
        buffers.append(raw)
        return False

    stream = cloudpickle.dumps(value, protocol=5, buffer_callback=out_of_band)
    return Encoded("pickle", stream, buffers)


def decode(kind: str, stream: Bytes, buffers: Sequence[Bytes]) -> Any:
    """The value an entry's stream and buffers hold."""
    if kind == "pickle":
        return pickle.loads(stream, buffers=buffers)
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = pq.read_table(pa.BufferReader(pa.py_buffer(stream))).to_pandas()
    if kind == "parquet":
        return frame
    series = frame.iloc[:, 0]
    return series.rename(None) if kind == "parquet-series-unnamed" else series


def layout(encoded: Encoded, meta: dict[str, Any]) -> list[Bytes]:
    """The parts of a whole entry (written one after another), its header made of ``meta``."""
    sizes = [b.nbytes for b in encoded.buffers]
    tail: list[Bytes] = [encoded.stream]
    end = len(encoded.stream)
    for buffer in encoded.buffers:
        pad = -end % _ALIGN
        tail += [bytes(pad), buffer]
        end += pad + buffer.nbytes
    header = _json(
        {**meta, "kind": encoded.kind, "crc": zlib.crc32(encoded.stream),
         "stream": len(encoded.stream), "buffers": sizes, "payload": end},
    ).encode()  # fmt: skip
    head = MAGIC + len(header).to_bytes(4, "little") + header
    if not encoded.buffers:  # a small result: one write
        return [b"".join((head, bytes(-len(head) % _ALIGN), encoded.stream))]
    return [head, bytes(-len(head) % _ALIGN), *tail]


#: a header's JSON, compact; made once (``json.dumps`` makes an encoder per call)
_json = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode


def read_header(start: bytes) -> Header | int:
    """The header at the ``start`` of an entry; an int: how many bytes it needs at least.

    Raises ``ValueError`` saying what is wrong with a damaged header.
    """
    if len(start) < _PREFIX:
        return _PREFIX
    if not start.startswith(MAGIC):
        raise ValueError("not a tarry cache entry of this format")
    end = _PREFIX + int.from_bytes(start[len(MAGIC) : _PREFIX], "little")
    if len(start) < end:
        return end
    meta = json.loads(start[_PREFIX:end].decode())  # a str: json skips guessing its encoding
    if not isinstance(meta, dict) or not isinstance(meta.get("payload"), int):
        raise ValueError("its header is damaged")
    return Header(meta, end + -end % _ALIGN)


def decode_entry(header: Header, data: Bytes) -> Any:
    """The value of a whole entry ``data`` (bytes, or a mapped file) with ``header``.

    Raises ``ValueError`` when it is cut short or its stream is damaged.
    """
    view = memoryview(data)
    if view.nbytes != header.size:
        raise ValueError(f"{view.nbytes} bytes of {header.size}: cut short")
    meta = header.meta
    at = header.start
    end = at + meta["stream"]
    stream = view[at:end]
    if zlib.crc32(stream) != meta["crc"]:
        raise ValueError("its checksum does not match its content")
    buffers = []
    for length in meta["buffers"]:
        end += -(end - at) % _ALIGN
        buffers.append(view[end : end + length])
        end += length
    return decode(meta["kind"], stream, buffers)


def _parquet(value: Any) -> Encoded | None:
    """A pandas DataFrame or Series as Parquet, if pyarrow holds it exactly; else None.

    Exactly: the dtypes, the index (a RangeIndex stays one) and the names
    come back as they were. What Parquet would change (object columns, a
    ``freq``, complex numbers, ``attrs``, categories that are not strings,
    duplicate columns...) stays pickled.
    """
    pandas = sys.modules.get("pandas")  # a pandas object means pandas is imported already
    if pandas is None or type(value) not in (pandas.DataFrame, pandas.Series):
        return None
    if value.attrs:
        return None
    if type(value) is pandas.Series:
        if value.name is not None and not isinstance(value.name, str):
            return None
        kind = "parquet-series" if value.name is not None else "parquet-series-unnamed"
        frame = value.to_frame(name=value.name if value.name is not None else "values")
    else:
        kind, frame = "parquet", value
    if not (_exact_index(frame.index) and _exact_index(frame.columns, names=True)):
        return None
    if not frame.columns.is_unique or not all(_exact(column) for _, column in frame.items()):
        return None
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return None
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=None), sink)
    return Encoded(kind, sink.getvalue().to_pybytes(), [])


def _exact_index(index: Any, names: bool = False) -> bool:
    """Whether pyarrow gives ``index`` back as it is (its names included).

    ``names``: the index holds column names, which Parquet keeps exactly
    only as strings (or as a RangeIndex).
    """
    import pandas

    if type(index) is pandas.RangeIndex:
        return index.name is None or isinstance(index.name, str)
    levels = index.levels if type(index) is pandas.MultiIndex else [index]
    return (
        all(name is None or isinstance(name, str) for name in index.names)
        and all(_exact(level, names) for level in levels)
        and getattr(index, "freq", None) is None
    )


def _exact(values: Any, names: bool = False) -> bool:
    """Whether Parquet gives a column (or an index) back with its dtype.

    An object column comes back as itself only on pandas 2 without
    ``future.infer_string``, and only if it holds strings alone (pyarrow
    makes other objects strings, numbers, or fails); pandas 3 reads every
    string column back as ``str``.
    """
    import pandas

    dtype = values.dtype
    if isinstance(dtype, pandas.api.extensions.ExtensionDtype) or dtype.kind != "O":
        return isinstance(dtype, pandas.StringDtype) if names else _exact_dtype(dtype)
    return (
        int(pandas.__version__.split(".")[0]) < 3
        and not pandas.get_option("future.infer_string")
        and pandas.api.types.infer_dtype(values, skipna=False) == "string"
    )


def _exact_dtype(dtype: Any) -> bool:
    """Whether a column of ``dtype`` comes back from Parquet with that dtype."""
    import pandas

    if isinstance(dtype, pandas.CategoricalDtype):  # of strings: others come back plain
        categories = dtype.categories
        return isinstance(categories.dtype, pandas.StringDtype) or (
            categories.dtype.kind == "O" and _exact(categories)
        )
    if isinstance(dtype, pandas.StringDtype | pandas.DatetimeTZDtype):
        return True
    if isinstance(dtype, pandas.api.extensions.ExtensionDtype):
        return dtype.name in _NULLABLE
    return dtype.kind in "biufMm"
