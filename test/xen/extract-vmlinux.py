"""Uncompress a bzImage's kernel into an ELF vmlinux (as Linux's
scripts/extract-vmlinux does): try each compressed stream found in it and
keep the first that gives an ELF file.  usage: extract-vmlinux.py IN OUT"""
import gzip
import lzma
import sys
import zlib

data = open(sys.argv[1], "rb").read()
formats = [
    (b"\x1f\x8b\x08", lambda b: zlib.decompressobj(31).decompress(b)),
    (b"\xfd7zXZ\x00", lambda b: lzma.LZMADecompressor().decompress(b)),
]
for magic, unpack in formats:
    at = data.find(magic)
    while at >= 0:
        try:
            elf = unpack(data[at:])
        except (zlib.error, lzma.LZMAError, EOFError, gzip.BadGzipFile):
            elf = b""
        if elf[:4] == b"\x7fELF":
            open(sys.argv[2], "wb").write(elf)
            sys.exit(0)
        at = data.find(magic, at + 1)
sys.exit("extract-vmlinux: no gzip or xz kernel found in " + sys.argv[1])
