"""Drop the static symbol table from a shared library (ELF64, little-endian), any architecture.

Some wheels ship extension modules with their ``.symtab``/``.strtab`` (names for debuggers
and profilers; cryptography's is 3.2 MB). The dynamic loader reads only the program headers
and the segments they map (ELF gABI, "Program Loading"; ``.dynsym`` serves dynamic linking),
so removing these non-allocated sections changes nothing the runtime sees. Done here in
Python because the build machine's ``strip`` does not read foreign architectures.

What changes: the dropped sections' headers become inactive (``SHT_NULL``, size 0; indexes
are unchanged, so no ``sh_link`` moves), the remaining non-allocated sections after the
mapped image are packed behind it, and the section header table follows them. Everything
up to the end of the mapped image is byte-for-byte the original, which :func:`strip_symbols`
checks before it writes.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Final

_EHDR: Final = struct.Struct("<16sHHIQQQIHHHHHH")
_PHDR: Final = struct.Struct("<IIQQQQQQ")
_SHDR: Final = struct.Struct("<IIQQQQIIQQ")
_ELF_MAGIC: Final = b"\x7fELF\x02\x01"  # ELFCLASS64, ELFDATA2LSB
_SHT_NULL: Final = 0
_SHT_SYMTAB: Final = 2
_SHT_NOBITS: Final = 8
_SHF_ALLOC: Final = 0x2


def _align(offset: int, alignment: int) -> int:
    return offset if alignment <= 1 else (offset + alignment - 1) // alignment * alignment


def strip_symbols(path: Path) -> int:
    """Remove ``.symtab`` and its string table from ``path`` in place; returns bytes saved.

    Returns 0 (file untouched) for anything that is not a 64-bit little-endian ELF with a
    static symbol table placed after its mapped image.
    """
    data = path.read_bytes()
    if not data.startswith(_ELF_MAGIC) or len(data) < _EHDR.size:
        return 0
    ehdr = list(_EHDR.unpack_from(data))
    phoff, shoff, phnum, shentsize, shnum, shstrndx = ehdr[5], ehdr[6], ehdr[10], ehdr[11], ehdr[12], ehdr[13]
    if shoff == 0 or shentsize != _SHDR.size or shnum == 0:
        return 0
    sections = [list(_SHDR.unpack_from(data, shoff + i * _SHDR.size)) for i in range(shnum)]
    mapped_end = phoff + phnum * _PHDR.size
    for i in range(phnum):
        phdr = _PHDR.unpack_from(data, phoff + i * _PHDR.size)
        mapped_end = max(mapped_end, phdr[2] + phdr[5])  # p_offset + p_filesz
    for sh in sections:
        if sh[2] & _SHF_ALLOC and sh[1] != _SHT_NOBITS:
            mapped_end = max(mapped_end, sh[4] + sh[5])
    drop = {i for i, sh in enumerate(sections) if sh[1] == _SHT_SYMTAB}
    drop |= {sections[i][6] for i in drop}  # the symbol table's string table (sh_link)
    if not drop or shstrndx in drop or any(sections[i][2] & _SHF_ALLOC or sections[i][4] < mapped_end for i in drop):
        return 0
    out = bytearray(data[:mapped_end])
    for i, sh in enumerate(sections):
        if i in drop:
            sections[i] = [sh[0], _SHT_NULL, 0, 0, 0, 0, 0, 0, 0, 0]
        elif i and sh[1] != _SHT_NOBITS and sh[4] >= mapped_end:
            offset = _align(len(out), sh[8])
            out += bytes(offset - len(out)) + data[sh[4] : sh[4] + sh[5]]
            sh[4] = offset
    ehdr[6] = _align(len(out), 8)
    out += bytes(ehdr[6] - len(out))
    for sh in sections:
        out += _SHDR.pack(*sh)
    out[: _EHDR.size] = _EHDR.pack(*ehdr)
    if out[_EHDR.size : mapped_end] != data[_EHDR.size : mapped_end]:
        return 0  # never write anything that would change what the loader maps
    path.write_bytes(bytes(out))
    return len(data) - len(out)
