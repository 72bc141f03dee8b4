"""A zip archive written front to back as it is sent, of stored (not deflated) entries.

An entry whose CRC-32 is known before its bytes (recorded by validation) has its CRC and
sizes in its local header and its bytes pass through untouched: no CRC computed, no copy.
An entry whose CRC is not known (a file validated before Coffer recorded it) has its CRC
computed as its bytes pass and written after them in a data descriptor, as the standard
library's zipfile does on a stream. ZIP64 fields are written where an entry's size or
offset, or the archive's entry count or size, needs them.

Why not a library: zipfile cannot be given a CRC (it computes one over every byte), and
stream-zip 0.0.84's `NO_COMPRESSION_64(size, crc)` computes the CRC of every byte again to
check it and re-joins the output into blocks of its `chunk_size`, the two costs this module
exists to avoid; its stored entries without a known CRC hold the whole file in memory.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator

# The values that say "see the ZIP64 field", in a 32-bit and a 16-bit field.
MARK_32 = 0xFFFFFFFF
MARK_16 = 0xFFFF
# From these on a size or offset, or the entry count, goes in ZIP64 fields.
ZIP32_LIMIT = MARK_32
COUNT_LIMIT = MARK_16

UTF8_NAMES = 0x0800
DATA_DESCRIPTOR = 0x0008
# Version needed to extract: 2.0 (stored, folders), 4.5 (ZIP64).
VERSION_20 = 20
VERSION_45 = 45
# "Made by" Unix (3): unzip then applies the mode in the external attributes.
MADE_BY_UNIX = 3 << 8
ZIP64_EXTRA = 0x0001

LOCAL = struct.Struct("<4sHHHHHIIIHH")
CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")
DESCRIPTOR_32 = struct.Struct("<4sIII")
DESCRIPTOR_64 = struct.Struct("<4sIQQ")
END_64 = struct.Struct("<4sQHHIIQQQQ")
END_64_LOCATOR = struct.Struct("<4sIQI")
END = struct.Struct("<4sHHHHIIH")

Moment = tuple[int, int, int, int, int, int]


class SizeMismatch(Exception):
    """Storage gave an entry more or fewer bytes than its header declared: the archive can
    no longer be finished correctly."""


def dos_time(moment: Moment) -> tuple[int, int]:
    """An MS-DOS (date, time) pair, the zip's own, from 1980 to 2107."""
    year, month, day, hour, minute, second = moment
    year = min(max(year, 1980), 2107)
    return (year - 1980) << 9 | month << 5 | day, hour << 11 | minute << 5 | second // 2


class ZipStream:
    """The archive's bytes, entry by entry; `finish` writes the central directory."""

    def __init__(self) -> None:
        self.offset = 0
        self.count = 0
        # The central directory's records, kept until the end (about 100 bytes an entry).
        self.central: list[bytes] = []

    def folder(self, path: str, moment: Moment, mode: int) -> bytes:
        """A folder's entry (`path` ends with `/`): its local header, no bytes."""
        return self._local(path, moment, mode, size=0, crc=0)

    def file(
        self,
        path: str,
        moment: Moment,
        mode: int,
        size: int,
        crc: int | None,
        chunks: Iterable[bytes],
    ) -> Iterator[bytes]:
        """A stored file of `size` bytes: its header, then its bytes as given (then a data
        descriptor when `crc` is None). SizeMismatch when the chunks do not add up to
        `size`."""
        if crc is not None:
            yield self._local(path, moment, mode, size, crc)
            sent = 0
            for chunk in chunks:
                sent += len(chunk)
                yield chunk
            self.offset += sent
            if sent != size:
                raise SizeMismatch(f"{path}: {sent} bytes where {size} were declared")
            return
        yield self._local(path, moment, mode, size, None)
        running, sent = 0, 0
        for chunk in chunks:
            running = zlib.crc32(chunk, running)
            sent += len(chunk)
            yield chunk
        self.offset += sent
        if sent != size:
            raise SizeMismatch(f"{path}: {sent} bytes where {size} were declared")
        self._set_crc(running)
        if size >= ZIP32_LIMIT:
            descriptor = DESCRIPTOR_64.pack(b"PK\x07\x08", running, size, size)
        else:
            descriptor = DESCRIPTOR_32.pack(b"PK\x07\x08", running, size, size)
        self.offset += len(descriptor)
        yield descriptor

    def _local(self, path: str, moment: Moment, mode: int, size: int, crc: int | None) -> bytes:
        """An entry's local header, its central record kept for the end."""
        name = path.encode()
        date, time = dos_time(moment)
        flags = UTF8_NAMES | (DATA_DESCRIPTOR if crc is None else 0)
        big = size >= ZIP32_LIMIT
        far = self.offset >= ZIP32_LIMIT
        version = VERSION_45 if big or far else VERSION_20
        # With a data descriptor the header's CRC and sizes are zero (APPNOTE 4.4.4); the
        # ZIP64 extra field then still says the sizes take 8 bytes in the descriptor.
        header_crc, header_size = (0, 0) if crc is None else (crc, size)
        local_extra = (
            struct.pack("<HHQQ", ZIP64_EXTRA, 16, header_size, header_size) if big else b""
        )
        shown = MARK_32 if big else header_size
        header = (
            LOCAL.pack(
                b"PK\x03\x04",
                version,
                flags,
                0,  # stored
                time,
                date,
                header_crc,
                shown,
                shown,
                len(name),
                len(local_extra),
            )
            + name
            + local_extra
        )
        wide = [size, size] if big else []
        if far:
            wide.append(self.offset)
        central_extra = (
            struct.pack(f"<HH{len(wide)}Q", ZIP64_EXTRA, 8 * len(wide), *wide) if wide else b""
        )
        self.central.append(
            CENTRAL.pack(
                b"PK\x01\x02",
                MADE_BY_UNIX | version,
                version,
                flags,
                0,
                time,
                date,
                crc or 0,
                MARK_32 if big else size,
                MARK_32 if big else size,
                len(name),
                len(central_extra),
                0,  # comment
                0,  # disk
                0,  # internal attributes
                mode,
                MARK_32 if far else self.offset,
            )
            + name
            + central_extra
        )
        self.count += 1
        self.offset += len(header)
        return header

    def _set_crc(self, crc: int) -> None:
        """The CRC of the last entry, known once its bytes have passed."""
        record = self.central[-1]
        self.central[-1] = record[:16] + struct.pack("<I", crc) + record[20:]

    def finish(self) -> Iterator[bytes]:
        """The central directory and the end records (ZIP64 ones where needed)."""
        start = self.offset
        size = 0
        for record in self.central:
            size += len(record)
            yield record
        self.central = []
        end = start + size
        if self.count >= COUNT_LIMIT or start >= ZIP32_LIMIT or size >= ZIP32_LIMIT:
            yield END_64.pack(
                b"PK\x06\x06", 44, MADE_BY_UNIX | VERSION_45, VERSION_45, 0, 0,
                self.count, self.count, size, start,
            )  # fmt: skip
            yield END_64_LOCATOR.pack(b"PK\x06\x07", 0, end, 1)
            count, size, start = MARK_16, MARK_32, MARK_32
        else:
            count = self.count
        yield END.pack(b"PK\x05\x06", 0, 0, count, count, size, start, 0)
