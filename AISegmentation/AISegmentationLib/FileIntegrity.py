"""Is an image file whole? The voxel data a header announces must all be there before a reader may load the file.

ITK's readers fill what a truncated file lacks with zeros, so a ``.nii.gz`` cut in half loads "successfully" with
its missing slices black. Here the header is read (NIfTI-1/2, NRRD, MetaImage), the byte count it implies is
computed, and the data is counted: the file size for raw data; for compressed data the stream is decompressed in
full, which also checks its CRC. Only counting, never interpreting: the readers still do the reading.
"""

import bz2
import gzip
import math
import os
import string
import struct
import zlib

CHUNK_BYTES = 1 << 22
NIFTI_DATATYPE_BITS = {1: 1, 2: 8, 4: 16, 8: 32, 16: 32, 32: 64, 64: 64, 128: 24, 256: 8, 512: 16, 768: 32,
                       1024: 64, 1280: 64, 1536: 128, 1792: 128, 2048: 256, 2304: 32}
NRRD_TYPE_BYTES = {}
for _names, _bytes in ((("signed char", "int8", "int8_t", "uchar", "unsigned char", "uint8", "uint8_t"), 1),
                       (("short", "short int", "signed short", "signed short int", "int16", "int16_t", "ushort",
                         "unsigned short", "unsigned short int", "uint16", "uint16_t"), 2),
                       (("int", "signed int", "int32", "int32_t", "uint", "unsigned int", "uint32", "uint32_t",
                         "float"), 4),
                       (("longlong", "long long", "long long int", "signed long long", "signed long long int",
                         "int64", "int64_t", "ulonglong", "unsigned long long", "unsigned long long int", "uint64",
                         "uint64_t", "double"), 8)):
    NRRD_TYPE_BYTES.update(dict.fromkeys(_names, _bytes))
META_TYPE_BYTES = {"MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4, "MET_UINT": 4,
                   "MET_LONG": 4, "MET_ULONG": 4, "MET_LONG_LONG": 8, "MET_ULONG_LONG": 8, "MET_FLOAT": 4,
                   "MET_DOUBLE": 8}


def requireWholeImageFile(path):
    """ValueError naming the file when its header announces more voxel data than the file holds, when its
    compressed stream is cut or corrupt, or when its header cannot be parsed. Formats not listed pass unchecked."""
    path = os.fspath(path)
    lower = path.lower()
    if lower.endswith((".nii", ".nii.gz")):
        _checkNifti(path)
    elif lower.endswith((".hdr", ".img", ".hdr.gz", ".img.gz")):
        _checkHeaderImagePair(path)
    elif lower.endswith((".nrrd", ".nhdr")):
        _checkNrrd(path)
    elif lower.endswith((".mha", ".mhd")):
        _checkMetaImage(path)


def _incomplete(path, detail):
    return ValueError(f"'{path}' is incomplete or corrupt ({detail}); it was not loaded")


def _streamLength(path, opener, offset=0, what="compressed data"):
    """Number of bytes a compressed stream decompresses to (the whole stream is read: a cut or corrupt stream
    raises ValueError)."""
    total = 0
    try:
        with open(path, "rb") as raw:
            raw.seek(offset)
            with opener(raw) as stream:
                while True:
                    chunk = stream.read(CHUNK_BYTES)
                    if not chunk:
                        return total
                    total += len(chunk)
    except (EOFError, OSError, zlib.error) as error:
        raise _incomplete(path, f"its {what} ends early or is damaged: {error}") from None


def _gzipOpener(raw):
    return gzip.GzipFile(fileobj=raw, mode="rb")


def _bz2Opener(raw):
    return bz2.BZ2File(raw, mode="rb")


class _ZlibStream:
    """Minimal read() over a raw zlib stream (MetaImage CompressedData)."""

    def __init__(self, raw):
        self._raw, self._decompressor = raw, zlib.decompressobj()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def read(self, size):
        while True:
            if self._decompressor.eof:
                return b""
            compressed = self._raw.read(CHUNK_BYTES)
            if not compressed:
                raise EOFError("zlib stream ended before its end marker")
            data = self._decompressor.decompress(compressed)
            if data:
                return data


# NIfTI -------------------------------------------------------------------------------------------------------------

def _readHead(path, size):
    opener = gzip.open if path.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as file:
            return file.read(size)
    except (EOFError, OSError, zlib.error) as error:
        raise _incomplete(path, f"its header cannot be read: {error}") from None


def _niftiExpectedBytes(path, head):
    """(bytes the file must hold, voxel count, separate .img data) announced by a NIfTI-1 or NIfTI-2 header."""
    for endian in "<>":
        if len(head) >= 348 and struct.unpack(endian + "i", head[:4])[0] == 348:
            dims = struct.unpack(endian + "8h", head[40:56])
            datatype, bitpix = struct.unpack(endian + "2h", head[70:74])
            voxOffset, minimumOffset = struct.unpack(endian + "f", head[108:112])[0], 352
            separate = head[344:347] == b"ni1"
            break
        if len(head) >= 540 and struct.unpack(endian + "i", head[:4])[0] == 540:
            datatype, bitpix = struct.unpack(endian + "2h", head[12:16])
            dims = struct.unpack(endian + "8q", head[16:80])
            voxOffset, minimumOffset = struct.unpack(endian + "q", head[168:176])[0], 544
            separate = head[4:7] == b"ni2"
            break
    else:
        raise _incomplete(path, "no NIfTI-1 or NIfTI-2 header")
    rank = dims[0]
    if not 1 <= rank <= 7 or any(d < 1 for d in dims[1:rank + 1]) or not math.isfinite(voxOffset) or voxOffset < 0:
        raise _incomplete(path, f"its header holds impossible values: dim {dims}, vox_offset {voxOffset}")
    bits = bitpix if bitpix > 0 else NIFTI_DATATYPE_BITS.get(datatype, 0)
    voxels = math.prod(dims[1:rank + 1])
    return int(voxOffset), minimumOffset, (voxels * bits + 7) // 8, voxels, separate


def _dataLength(path):
    """Bytes of a file's content: its size, or its decompressed length (CRC checked) for .gz."""
    return _streamLength(path, _gzipOpener) if path.lower().endswith(".gz") else os.path.getsize(path)


def _checkNifti(path):
    offset, minimumOffset, dataBytes, voxels, separate = _niftiExpectedBytes(path, _readHead(path, 540))
    if separate:  # a NIfTI-1 header in a .nii file whose magic says the data lies in a .img file
        return
    expected = max(offset, minimumOffset) + dataBytes
    length = _dataLength(path)
    if length < expected:
        raise _incomplete(path, f"the header announces {voxels} voxels ({expected} bytes with the header), "
                                f"the file holds {length} bytes")


def _checkHeaderImagePair(path):
    """A .hdr/.img pair (NIfTI-1 "ni1" or Analyze 7.5; either file given, each maybe gzipped): the image file must
    hold the voxel data that the header announces, from its vox_offset on."""
    stem = path[:-3] if path.lower().endswith(".gz") else path
    stem = stem[:-4]
    existing = [candidate for candidate in (stem + ".hdr", stem + ".hdr.gz") if os.path.isfile(candidate)]
    if not existing:
        raise _incomplete(path, f"its header '{os.path.basename(stem)}.hdr' is missing")
    images = [candidate for candidate in (stem + ".img", stem + ".img.gz") if os.path.isfile(candidate)]
    if not images:
        raise _incomplete(path, f"its image data '{os.path.basename(stem)}.img' is missing")
    offset, _minimum, dataBytes, voxels, _separate = _niftiExpectedBytes(existing[0], _readHead(existing[0], 540))
    length = _dataLength(images[0])
    if length < offset + dataBytes:
        raise _incomplete(path, f"the header announces {voxels} voxels ({offset + dataBytes} bytes in "
                                f"'{os.path.basename(images[0])}'), that file holds {length} bytes")


# NRRD --------------------------------------------------------------------------------------------------------------

def _nrrdHeader(path):
    """(fields {lowercase key: value}, header length in bytes) of a NRRD file."""
    with open(path, "rb") as file:
        data = file.read(1 << 16)
        while b"\n\n" not in data and b"\r\n\r\n" not in data:
            more = file.read(1 << 16)
            if not more:
                break
            data += more
    if not data.startswith(b"NRRD"):
        raise _incomplete(path, "no NRRD magic")
    ends = [index + len(marker) for marker in (b"\n\n", b"\r\n\r\n") for index in [data.find(marker)] if index >= 0]
    end = min(ends) if ends else len(data)
    fields = {}
    for line in data[:end].decode("latin-1").splitlines()[1:]:
        key, separator, value = line.partition(": ")
        if line.startswith("#") or not separator or ":=" in key:
            continue  # comments and key/value pairs carry no layout
        fields[key.strip().lower()] = value.strip()
    return fields, end


def _checkNrrd(path):
    fields, headerLength = _nrrdHeader(path)
    try:
        sizes = [int(size) for size in fields["sizes"].split()]
        typeBytes = NRRD_TYPE_BYTES[fields["type"].lower()]
    except (KeyError, ValueError):
        if fields.get("type", "").lower() == "block":
            return
        raise _incomplete(path, f"its header lacks valid 'sizes' / 'type' ({fields.get('sizes')}, "
                                f"{fields.get('type')})") from None
    if any(size < 1 for size in sizes):
        raise _incomplete(path, f"its header announces sizes {sizes}")
    encoding = fields.get("encoding", "raw").lower()
    expected = math.prod(sizes) * typeBytes
    dataFile = fields.get("data file", fields.get("datafile"))
    offset = headerLength
    if dataFile is not None:
        if " " in dataFile.strip() or dataFile.strip().upper().startswith("LIST"):
            return  # several data files (a list or a pattern): left to the reader
        dataPath = dataFile if os.path.isabs(dataFile) else os.path.join(os.path.dirname(path), dataFile)
        if not os.path.isfile(dataPath):
            raise _incomplete(path, f"its data file '{dataFile}' is missing")
        path, offset = dataPath, 0
    byteSkip = int(fields.get("byte skip", fields.get("byteskip", "0")) or 0)
    if fields.get("line skip", fields.get("lineskip", "0")) not in ("0", ""):
        return  # line skips are rare; left to the reader
    if encoding in ("ascii", "text", "txt", "hex"):
        _checkTextNrrdData(path, offset, encoding, math.prod(sizes), expected)
        return
    if encoding == "raw":
        if byteSkip == -1:
            available = os.path.getsize(path) - offset  # data is at the end of the file
        else:
            available = os.path.getsize(path) - offset - byteSkip
    elif encoding in ("gzip", "gz"):
        available = _streamLength(path, _gzipOpener, offset, "gzip data") - max(byteSkip, 0)
    elif encoding in ("bzip2", "bz2"):
        available = _streamLength(path, _bz2Opener, offset, "bzip2 data") - max(byteSkip, 0)
    else:
        raise _incomplete(path, f"unknown NRRD encoding '{encoding}'")
    if available < expected:
        raise _incomplete(path, f"the header announces {math.prod(sizes)} values of {typeBytes} bytes "
                                f"({expected} bytes), the data holds {max(available, 0)} bytes")


def _checkTextNrrdData(path, offset, encoding, values, expectedBytes):
    """Text encodings: the data after the header must hold `values` numbers (ascii), or 2 hex digits for each of
    the expectedBytes bytes (hex)."""
    with open(path, "rb") as file:
        file.seek(offset)
        text = file.read()
    if encoding == "hex":
        found, needed, unit = sum(chr(byte) in string.hexdigits for byte in text) // 2, expectedBytes, "bytes"
    else:
        found, needed, unit = len(text.split()), values, "values"
    if found < needed:
        raise _incomplete(path, f"the header announces {needed} {unit}, the {encoding} data holds {found}")


# MetaImage ---------------------------------------------------------------------------------------------------------

def _metaHeader(path):
    fields, length = {}, 0
    with open(path, "rb") as file:
        for rawLine in file:
            length += len(rawLine)
            key, separator, value = rawLine.decode("latin-1").partition("=")
            if not separator:
                raise _incomplete(path, "its MetaImage header has a line without '='")
            fields[key.strip().lower()] = value.strip()
            if key.strip().lower() == "elementdatafile":
                return fields, length
            if length > (1 << 20):
                break
    raise _incomplete(path, "its MetaImage header has no ElementDataFile line")


def _checkMetaImage(path):
    fields, headerLength = _metaHeader(path)
    try:
        sizes = [int(size) for size in fields["dimsize"].split()]
        typeBytes = META_TYPE_BYTES[fields["elementtype"].upper()]
        channels = int(fields.get("elementnumberofchannels", "1"))
    except (KeyError, ValueError):
        raise _incomplete(path, "its MetaImage header lacks a valid DimSize / ElementType") from None
    expected = math.prod(sizes) * typeBytes * channels
    dataFile = fields["elementdatafile"]
    offset = headerLength
    if dataFile.upper() != "LOCAL":
        if " " in dataFile or dataFile.upper().startswith("LIST") or "%" in dataFile:
            return  # one file per slice: left to the reader
        path = dataFile if os.path.isabs(dataFile) else os.path.join(os.path.dirname(path), dataFile)
        if not os.path.isfile(path):
            raise _incomplete(path, "its data file is missing")
        offset = 0
    headerSize = int(fields.get("headersize", "0") or 0)
    if headerSize < 0:
        return  # data at the end of the file: left to the reader
    offset += headerSize
    if fields.get("compresseddata", "false").lower() == "true":
        available = _streamLength(path, _ZlibStream, offset, "zlib data")
    else:
        available = os.path.getsize(path) - offset
    if available < expected:
        raise _incomplete(path, f"the header announces {math.prod(sizes)} values ({expected} bytes), "
                                f"the data holds {max(available, 0)} bytes")
