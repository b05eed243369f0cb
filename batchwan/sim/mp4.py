"""A tiny valid MP4, built box by box, for the simulator's videos.

The file holds one Motion-JPEG frame shown for the whole clip (ISO ``mp4v`` sample entry with
object type 0x6C, JPEG), laid out ``ftyp``, ``moov`` (with ``mvhd`` and one video track), then
``mdat``, so that players, ``ffprobe`` and ``mutagen`` all accept it. No encoder is needed: the
frame is a JPEG that Pillow writes.
"""

from __future__ import annotations

import hashlib
import io
import struct
from functools import lru_cache

from PIL import Image

_MOVIE_TIMESCALE = 1000
_UNITY_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
_JPEG_OBJECT_TYPE = 0x6C  # MPEG-4 Systems objectTypeIndication for JPEG
_LANGUAGE_UND = 0x55C4  # ISO 639-2 "und", packed 5 bits per letter


def _box(kind: bytes, *parts: bytes) -> bytes:
    payload = b"".join(parts)
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _full_box(kind: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *parts)


def _descriptor(tag: int, payload: bytes) -> bytes:
    if len(payload) > 127:  # one length byte keeps this simple; our descriptors are tiny
        raise ValueError("descriptor too long")
    return bytes([tag, len(payload)]) + payload


def _jpeg_frame(width: int, height: int, color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="JPEG", quality=70)
    return out.getvalue()


def _sample_entry(width: int, height: int, frame_size: int) -> bytes:
    decoder_config = _descriptor(
        0x04,
        bytes([_JPEG_OBJECT_TYPE, (0x04 << 2) | 0x01])  # visual stream, reserved bit set
        + frame_size.to_bytes(3, "big")  # bufferSizeDB
        + struct.pack(">II", frame_size * 8, frame_size * 8),  # max and average bitrate
    )
    es_descriptor = _descriptor(
        0x03, struct.pack(">HB", 1, 0) + decoder_config + _descriptor(0x06, b"\x02")
    )
    compressor = b"batchwan".ljust(31, b"\0")
    return _box(
        b"mp4v",
        bytes(6),
        struct.pack(">H", 1),  # data_reference_index
        bytes(16),
        struct.pack(">HH", width, height),
        struct.pack(">II", 0x00480000, 0x00480000),  # 72 dpi
        bytes(4),
        struct.pack(">H", 1),  # frame_count
        bytes([len(b"batchwan")]) + compressor,
        struct.pack(">Hh", 0x0018, -1),
        _full_box(b"esds", 0, 0, es_descriptor),
    )


def _moov(width: int, height: int, duration: int, frame_size: int, chunk_offset: int) -> bytes:
    mvhd = _full_box(
        b"mvhd",
        0,
        0,
        struct.pack(">IIII", 0, 0, _MOVIE_TIMESCALE, duration),
        struct.pack(">IH", 0x00010000, 0x0100),  # rate 1.0, volume 1.0
        bytes(10),
        _UNITY_MATRIX,
        bytes(24),
        struct.pack(">I", 2),  # next track id
    )
    tkhd = _full_box(
        b"tkhd",
        0,
        0x3,  # enabled, in movie
        struct.pack(">IIIII", 0, 0, 1, 0, duration),
        bytes(8),
        struct.pack(">hhhH", 0, 0, 0, 0),
        _UNITY_MATRIX,
        struct.pack(">II", width << 16, height << 16),
    )
    mdhd = _full_box(
        b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, _MOVIE_TIMESCALE, duration, _LANGUAGE_UND, 0)
    )
    hdlr = _full_box(b"hdlr", 0, 0, bytes(4), b"vide", bytes(12), b"VideoHandler\0")
    stbl = _box(
        b"stbl",
        _full_box(b"stsd", 0, 0, struct.pack(">I", 1), _sample_entry(width, height, frame_size)),
        _full_box(b"stts", 0, 0, struct.pack(">III", 1, 1, duration)),
        _full_box(b"stss", 0, 0, struct.pack(">II", 1, 1)),
        _full_box(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, 1, 1)),
        _full_box(b"stsz", 0, 0, struct.pack(">III", 0, 1, frame_size)),
        _full_box(b"stco", 0, 0, struct.pack(">II", 1, chunk_offset)),
    )
    minf = _box(
        b"minf",
        _full_box(b"vmhd", 0, 1, bytes(8)),
        _box(b"dinf", _full_box(b"dref", 0, 0, struct.pack(">I", 1), _full_box(b"url ", 0, 1))),
        stbl,
    )
    trak = _box(b"trak", tkhd, _box(b"mdia", mdhd, hdlr, minf))
    return _box(b"moov", mvhd, trak)


@lru_cache(maxsize=256)  # a long simulator session serves many distinct clips
def tiny_mp4(label: str = "", *, width: int = 160, height: int = 96, seconds: float = 1.0) -> bytes:
    """A small valid MP4 of one still frame lasting ``seconds``; ``label`` picks its colour."""
    if width <= 0 or height <= 0 or seconds <= 0:
        raise ValueError("width, height and seconds must be positive")
    digest = hashlib.sha256(label.encode("utf-8")).digest()
    frame = _jpeg_frame(width, height, (digest[0], digest[1], digest[2]))
    duration = max(1, round(seconds * _MOVIE_TIMESCALE))
    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isom", b"iso2", b"mp41")
    # The chunk offset is fixed-width, so a first pass with 0 gives moov's final size.
    moov_size = len(_moov(width, height, duration, len(frame), 0))
    offset = len(ftyp) + moov_size + 8
    moov = _moov(width, height, duration, len(frame), offset)
    return ftyp + moov + _box(b"mdat", frame)
