"""Replace some columns of a parquet file without decoding and encoding the others
(issue 11 §2: the first post-merger year patches the own 2025 commune of 80k households
in four 27M-row period files; rewriting every column of them took most of the added
year's three minutes).

A parquet file is "PAR1", the column chunks of each row group one after the other, the
footer (a Thrift compact-protocol FileMetaData), its length and "PAR1". A column chunk's
bytes (its pages, their headers and statistics) do not depend on where it sits in the
file or on the other columns; only the footer records where each chunk starts. So the
new values of the replaced columns are written by pyarrow into a file of their own, with
the same writer settings and the same rows per row group, and the file is put together
again: every other chunk copied byte for byte, the new chunks in their columns' places,
the footer the old one with the replaced chunks' metadata taken from the new file and
every offset moved to where its chunk now is. That is the file pyarrow writes for the
whole table (tests compare with a full rewrite). The footer is decoded and encoded by a
small generic Thrift compact codec; it is used only when encoding the decoded footer
gives back its exact bytes, and the file only when it has no page index, bloom filter
or encryption (offsets this module does not move): else ``CannotSplice``.
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

MAGIC = b"PAR1"

# Thrift compact protocol element types
_STOP, _TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY, _LIST, _SET, _MAP, \
    _STRUCT = range(13)

# FileMetaData / RowGroup / ColumnChunk / ColumnMetaData field ids (parquet.thrift)
_FILE_ROW_GROUPS, _FILE_ENCRYPTION = 4, 8
_RG_COLUMNS, _RG_BYTES, _RG_OFFSET, _RG_COMPRESSED = 1, 2, 5, 6
_CC_PATH, _CC_OFFSET, _CC_META = 1, 2, 3
_CC_UNMOVED = (4, 6, 8, 9)  # offset / column index, encryption: not supported
_MD_UNCOMPRESSED, _MD_COMPRESSED, _MD_DATA, _MD_INDEX, _MD_DICT, _MD_BLOOM = 6, 7, 9, 10, 11, 14


class CannotSplice(Exception):
    """The file has something this module does not move: rewrite it whole."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _put_varint(out: bytearray, value: int) -> None:
    while True:
        if value < 0x80:
            out.append(value)
            return
        out.append((value & 0x7F) | 0x80)
        value >>= 7


def _zigzag(value: int) -> int:
    return (value << 1) ^ (value >> 63)


def _unzigzag(value: int) -> int:
    return (value >> 1) ^ -(value & 1)


def _read_value(data: bytes, pos: int, kind: int):
    if kind in (_TRUE, _FALSE):  # a bool in a collection: one byte
        return data[pos] == 1, pos + 1
    if kind == _BYTE:
        return data[pos], pos + 1
    if kind in (_I16, _I32, _I64):
        raw, pos = _varint(data, pos)
        return _unzigzag(raw), pos
    if kind == _DOUBLE:
        return data[pos:pos + 8], pos + 8
    if kind == _BINARY:
        size, pos = _varint(data, pos)
        return data[pos:pos + size], pos + size
    if kind in (_LIST, _SET):
        head = data[pos]
        pos += 1
        size, element = head >> 4, head & 0x0F
        if size == 15:
            size, pos = _varint(data, pos)
        items = []
        for _ in range(size):
            item, pos = _read_value(data, pos, element)
            items.append(item)
        return (element, items), pos
    if kind == _MAP:
        size, pos = _varint(data, pos)
        if not size:
            return (0, 0, []), pos
        types = data[pos]
        pos += 1
        key_kind, value_kind = types >> 4, types & 0x0F
        items = []
        for _ in range(size):
            key, pos = _read_value(data, pos, key_kind)
            value, pos = _read_value(data, pos, value_kind)
            items.append((key, value))
        return (key_kind, value_kind, items), pos
    if kind == _STRUCT:
        return _read_struct(data, pos)
    raise CannotSplice(f"unknown thrift type {kind}")


def _read_struct(data: bytes, pos: int) -> tuple[list, int]:
    """A struct as a list of [field id, type, value] in file order."""
    fields, last = [], 0
    while True:
        head = data[pos]
        pos += 1
        kind = head & 0x0F
        if kind == _STOP:
            return fields, pos
        delta = head >> 4
        if delta:
            field = last + delta
        else:
            raw, pos = _varint(data, pos)
            field = _unzigzag(raw)
        if kind in (_TRUE, _FALSE):
            value = kind == _TRUE
        else:
            value, pos = _read_value(data, pos, kind)
        fields.append([field, kind, value])
        last = field


def _write_value(out: bytearray, kind: int, value) -> None:
    if kind in (_TRUE, _FALSE):
        out.append(1 if value else 2)
    elif kind == _BYTE:
        out.append(value & 0xFF)
    elif kind in (_I16, _I32, _I64):
        _put_varint(out, _zigzag(value) & 0xFFFFFFFFFFFFFFFF)
    elif kind == _DOUBLE:
        out += value
    elif kind == _BINARY:
        _put_varint(out, len(value))
        out += value
    elif kind in (_LIST, _SET):
        element, items = value
        if len(items) < 15:
            out.append(len(items) << 4 | element)
        else:
            out.append(0xF0 | element)
            _put_varint(out, len(items))
        for item in items:
            _write_value(out, element, item)
    elif kind == _MAP:
        key_kind, value_kind, items = value
        _put_varint(out, len(items))
        if items:
            out.append(key_kind << 4 | value_kind)
            for key, item in items:
                _write_value(out, key_kind, key)
                _write_value(out, value_kind, item)
    elif kind == _STRUCT:
        _write_struct(out, value)
    else:
        raise CannotSplice(f"unknown thrift type {kind}")


def _write_struct(out: bytearray, fields: list) -> None:
    last = 0
    for field, kind, value in fields:
        if kind in (_TRUE, _FALSE):
            kind = _TRUE if value else _FALSE
        delta = field - last
        if 0 < delta <= 15:
            out.append(delta << 4 | kind)
        else:
            out.append(kind)
            _put_varint(out, _zigzag(field))
        if kind not in (_TRUE, _FALSE):
            _write_value(out, kind, value)
        last = field
    out.append(_STOP)


def _get(fields: list, field: int, default=None):
    for f, _, value in fields:
        if f == field:
            return value
    return default


def _set(fields: list, field: int, value) -> None:
    for entry in fields:
        if entry[0] == field:
            entry[2] = value
            return
    raise CannotSplice(f"no field {field} to set")


def read_footer(path: Path) -> tuple[list, int]:
    """(FileMetaData fields, the footer's first byte), checked to encode back to its
    own bytes."""
    with open(path, "rb") as handle:
        handle.seek(-8, os.SEEK_END)
        size_bytes, magic = handle.read(4), handle.read(4)
        if magic != MAGIC:
            raise CannotSplice("not a plain parquet file")
        size = struct.unpack("<i", size_bytes)[0]
        handle.seek(-8 - size, os.SEEK_END)
        start = handle.tell()
        raw = handle.read(size)
    fields, end = _read_struct(raw, 0)
    again = bytearray()
    _write_struct(again, fields)
    if end != len(raw) or bytes(again) != raw:
        raise CannotSplice("the footer does not encode back to its bytes")
    if _get(fields, _FILE_ENCRYPTION) is not None:
        raise CannotSplice("an encrypted file")
    return fields, start


def _chunk_range(chunk: list) -> tuple[int, int]:
    """(first byte, length) of a column chunk's pages."""
    if any(_get(chunk, f) is not None for f in _CC_UNMOVED) or _get(chunk, _CC_PATH):
        raise CannotSplice("a page index, encryption or an outside chunk")
    meta = _get(chunk, _CC_META)
    if meta is None or any(_get(meta, f) is not None for f in (_MD_INDEX, _MD_BLOOM)):
        raise CannotSplice("no chunk metadata, or an index page or bloom filter")
    start = _get(meta, _MD_DICT)
    if start is None:
        start = _get(meta, _MD_DATA)
    return start, _get(meta, _MD_COMPRESSED)


def _moved(chunk: list, delta: int) -> list:
    """A copy of a column chunk's metadata with its offsets moved by `delta` bytes."""
    import copy

    chunk = copy.deepcopy(chunk)
    if _get(chunk, _CC_OFFSET):  # (pyarrow writes 0 there: the field is deprecated)
        _set(chunk, _CC_OFFSET, _get(chunk, _CC_OFFSET) + delta)
    meta = _get(chunk, _CC_META)
    for field in (_MD_DATA, _MD_DICT):
        if _get(meta, field) is not None:
            _set(meta, field, _get(meta, field) + delta)
    return chunk


def _copy(source, target, start: int, length: int) -> None:
    """Bytes [start, start + length) of open file `source` appended to `target`."""
    source_fd, target_fd = source.fileno(), target.fileno()
    target.flush()  # (the kernel copy writes at the descriptor's position)
    copied = 0
    while copied < length:
        try:
            done = os.copy_file_range(source_fd, target_fd, length - copied,
                                      start + copied)
        except OSError:
            done = 0
        if not done:  # (no copy_file_range across these files): read and write
            source.seek(start + copied)
            while copied < length:
                block = source.read(min(1 << 24, length - copied))
                if not block:
                    raise CannotSplice("the file is shorter than its footer says")
                target.write(block)
                copied += len(block)
            return
        copied += done


def splice_columns(path: Path, replacement: Path, target: Path, names: list[str]) -> None:
    """Write `target`: the parquet file `path` with its columns `names` taken from
    `replacement` (a parquet file of those columns only, written with the same settings,
    with the same rows in each row group). CannotSplice when the files' layout is not
    one this module handles (nothing usable is left at `target` then)."""
    meta, _ = read_footer(path)
    new_meta, _ = read_footer(replacement)
    groups = _get(meta, _FILE_ROW_GROUPS)[1]
    new_groups = _get(new_meta, _FILE_ROW_GROUPS)[1]
    if len(groups) != len(new_groups):
        raise CannotSplice("not the same row groups")
    with open(path, "rb") as source, open(replacement, "rb") as donor, \
            open(target, "wb") as out:
        out.write(MAGIC)
        position = len(MAGIC)
        for group, new_group in zip(groups, new_groups):
            chunks = _get(group, _RG_COLUMNS)[1]
            new_chunks = {tuple(_get(_get(c, _CC_META), 3)[1]): c
                          for c in _get(new_group, _RG_COLUMNS)[1]}
            if _get(group, 3) != _get(new_group, 3):
                raise CannotSplice("a row group of other rows")
            placed, first_delta = [], None
            uncompressed = compressed = 0
            for chunk in chunks:
                key = tuple(_get(_get(chunk, _CC_META), 3)[1])
                replaced = len(key) == 1 and key[0].decode() in names
                if replaced:
                    chunk = new_chunks.pop(key, None)
                    if chunk is None:
                        raise CannotSplice(f"no {key} in the replacement")
                start, length = _chunk_range(chunk)
                _copy(donor if replaced else source, out, start, length)
                delta = position - start
                first_delta = delta if first_delta is None else first_delta
                placed.append(_moved(chunk, delta))
                meta_fields = _get(chunk, _CC_META)
                uncompressed += _get(meta_fields, _MD_UNCOMPRESSED)
                compressed += _get(meta_fields, _MD_COMPRESSED)
                position += length
            if new_chunks:
                raise CannotSplice("the replacement has other columns")
            group[:] = [list(f) for f in group]
            _set(group, _RG_COLUMNS, (_STRUCT, placed))
            if _get(group, _RG_OFFSET) is not None:
                _set(group, _RG_OFFSET, _get(group, _RG_OFFSET) + first_delta)
            if _get(group, _RG_BYTES) is not None:
                _set(group, _RG_BYTES, uncompressed)
            if _get(group, _RG_COMPRESSED) is not None:
                _set(group, _RG_COMPRESSED, compressed)
        footer = bytearray()
        _write_struct(footer, meta)
        out.write(footer)
        out.write(struct.pack("<i", len(footer)))
        out.write(MAGIC)
