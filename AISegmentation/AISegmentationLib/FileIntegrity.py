"""Is an image file whole? The voxel data a header announces must all be there before a reader may load the file.

ITK's readers fill what a truncated file lacks with zeros, so a ``.nii.gz`` cut in half loads "successfully" with
its missing slices black. Here the header is read (NIfTI-1/2, NRRD, MetaImage), the byte count it implies is
computed, and the data is counted: the file size for raw data; for compressed data the stream is decompressed in
full, which also checks its CRC. Only counting, never interpreting: the readers still do the reading.

Files come from other people (uploads on the web page, cohort manifests), so before a reader may open one:
- it must be a regular file (a FIFO or a device is refused without being opened: reading one would block);
- the voxel data its header announces must fit the budget ``$AISEGMENTATION_MAX_IMAGE_BYTES`` (default 4 GiB): a
  small ``.nii.gz`` announcing a huge volume is refused from its header, and a compressed stream is inflated only up
  to what the header announces (plus 1 MiB of slack), so a decompression bomb is never inflated in full;
- a NRRD or MetaImage header is read in bounded, linear time (at most ``MAX_HEADER_BYTES``);
- a detached data file (``.nhdr``'s ``data file``, ``.mhd``'s ``ElementDataFile``, their lists and patterns) must
  lie beside its header, in the same folder or below: no absolute path, no ``..``, no symbolic link out.
"""

import bz2
import gzip
import math
import os
import re
import stat
import string
import struct
import zlib

CHUNK_BYTES = 1 << 22
MAX_HEADER_BYTES = 1 << 20  # a NRRD / MetaImage header longer than this is refused (real ones hold a few KiB)
MAX_IMAGE_BYTES_VARIABLE = "AISEGMENTATION_MAX_IMAGE_BYTES"
DEFAULT_MAX_IMAGE_BYTES = 4 << 30
SLACK_BYTES = 1 << 20  # a compressed stream may hold this much more than its header announces
MAX_DATA_FILES = 100000  # files of a detached data file list or pattern
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


def requireWholeImageFile(path, maxBytes=None):
    """ValueError naming the file when it is not a regular file, when its header announces more voxel data than
    the file holds or than maxBytes (default: maxImageBytes()), when its compressed stream is cut, corrupt or
    longer than announced, when its header cannot be parsed or when its detached data file does not lie beside it.
    Other formats are only checked for being regular files."""
    path = os.fspath(path)
    requireRegularFile(path)
    limit = maxImageBytes() if maxBytes is None else int(maxBytes)
    lower = path.lower()
    if lower.endswith((".nii", ".nii.gz")):
        _checkNifti(path, limit)
    elif lower.endswith((".hdr", ".img", ".hdr.gz", ".img.gz")):
        _checkHeaderImagePair(path, limit)
    elif lower.endswith((".nrrd", ".nhdr")):
        _checkNrrd(path, limit)
    elif lower.endswith((".mha", ".mhd")):
        _checkMetaImage(path, limit)


def maxImageBytes():
    """The budget of voxel data one image file may announce: $AISEGMENTATION_MAX_IMAGE_BYTES or 4 GiB."""
    text = os.environ.get(MAX_IMAGE_BYTES_VARIABLE, "").strip()
    if not text:
        return DEFAULT_MAX_IMAGE_BYTES
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (0 < value < float("inf")) or value != int(value):
        raise ValueError(f"The environment variable {MAX_IMAGE_BYTES_VARIABLE} must be a positive whole number of "
                         f"bytes, got {text!r}")
    return int(value)


def requireRegularFile(path, what="Image file"):
    """ValueError unless path is a regular file (after links); a FIFO, a device or a socket is never opened."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        raise ValueError(f"{what} '{path}' cannot be read: {error.strerror or error}") from None
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO, device or socket"
        raise ValueError(f"{what} '{path}' is not a regular file ({kind}); it was not opened")


def _incomplete(path, detail):
    return ValueError(f"'{path}' is incomplete or corrupt ({detail}); it was not loaded")


def _requireBudget(path, voxels, announcedBytes, limit):
    if announcedBytes > limit:
        raise ValueError(f"'{path}' announces {voxels} voxels ({announcedBytes / 2**30:.2f} GiB of voxel data), more "
                         f"than the limit of {limit / 2**30:.2f} GiB for one image (${MAX_IMAGE_BYTES_VARIABLE}); it "
                         "was not loaded")


def _streamLength(path, opener, offset=0, what="compressed data", limit=None):
    """Number of bytes a compressed stream decompresses to (the whole stream is read: a cut or corrupt stream
    raises ValueError); reading stops as soon as it passes `limit` bytes: a ValueError too (a decompression bomb)."""
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
                    if limit is not None and total > limit:
                        raise ValueError(f"'{path}': its {what} inflates to more than the {limit} bytes its header "
                                         "announces (a decompression bomb?); it was not loaded")
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


def _dataLength(path, expected):
    """Bytes of a file's content: its size, or its decompressed length (CRC checked) for .gz, read no further than
    `expected` bytes plus the slack."""
    if path.lower().endswith(".gz"):
        return _streamLength(path, _gzipOpener, limit=expected + SLACK_BYTES)
    return os.path.getsize(path)


def _checkNifti(path, limit):
    offset, minimumOffset, dataBytes, voxels, separate = _niftiExpectedBytes(path, _readHead(path, 540))
    _requireBudget(path, voxels, dataBytes, limit)
    if separate:  # a NIfTI-1 header in a .nii file whose magic says the data lies in a .img file
        return
    expected = max(offset, minimumOffset) + dataBytes
    length = _dataLength(path, expected)
    if length < expected:
        raise _incomplete(path, f"the header announces {voxels} voxels ({expected} bytes with the header), "
                                f"the file holds {length} bytes")


def _checkHeaderImagePair(path, limit):
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
    _requireBudget(path, voxels, dataBytes, limit)
    requireRegularFile(images[0])
    length = _dataLength(images[0], offset + dataBytes)
    if length < offset + dataBytes:
        raise _incomplete(path, f"the header announces {voxels} voxels ({offset + dataBytes} bytes in "
                                f"'{os.path.basename(images[0])}'), that file holds {length} bytes")


# NRRD --------------------------------------------------------------------------------------------------------------

def _nrrdHeader(path):
    """(fields {lowercase key: value}, header length in bytes, header lines) of a NRRD file, read in linear time from
    at most MAX_HEADER_BYTES (the header ends at its blank line, or at the end of a detached header)."""
    with open(path, "rb") as file:
        data = file.read(MAX_HEADER_BYTES + 1)
    if not data.startswith(b"NRRD"):
        raise _incomplete(path, "no NRRD magic")
    ends = [index + len(marker) for marker in (b"\n\n", b"\r\n\r\n") for index in [data.find(marker)] if index >= 0]
    if not ends and len(data) > MAX_HEADER_BYTES:
        raise _incomplete(path, f"its header does not end within {MAX_HEADER_BYTES} bytes")
    end = min(ends) if ends else len(data)
    lines = data[:end].decode("latin-1").splitlines()[1:]
    fields = {}
    for line in lines:
        key, separator, value = line.partition(": ")
        if line.startswith("#") or not separator or ":=" in key:
            continue  # comments and key/value pairs carry no layout
        fields[key.strip().lower()] = value.strip()
    return fields, end, lines


def _dataFileList(headerPath, value, following):
    """The names of a detached data file field: one file, the names after ``LIST``, or a formatted list
    ``<format> <min> <max> <step> [<subdim>]`` expanded. following: the header's lines after the field."""
    if value.split()[0].upper() == "LIST":
        return [line.strip() for line in following if line.strip()]
    parts = value.split()
    if len(parts) in (4, 5) and "%" in parts[0] and all(re.fullmatch(r"[+-]?\d+", part) for part in parts[1:]):
        first, last, step = (int(part) for part in parts[1:4])
        count = (last - first) // step + 1 if step else 0
        if not 0 < count <= MAX_DATA_FILES:
            raise _incomplete(headerPath, f"its data file pattern '{value}' names {max(count, 0)} files")
        try:
            return [parts[0] % number for number in range(first, last + (1 if step > 0 else -1), step)]
        except (TypeError, ValueError):
            raise _incomplete(headerPath, f"its data file pattern '{parts[0]}' is not usable") from None
    return [value]


def requireDataFilesBeside(headerPath, names):
    """The paths of a detached header's data files, each a regular file in the header's folder or below; ValueError
    for an absolute path, a '..', a symbolic link out of that folder or a missing file."""
    folder = os.path.dirname(os.path.abspath(headerPath))
    realFolder = os.path.realpath(folder)
    if len(names) > MAX_DATA_FILES:
        raise _incomplete(headerPath, f"it names {len(names)} data files")
    paths = []
    for name in names:
        parts = re.split(r"[\\/]", name)
        path = os.path.join(folder, name)
        inside = (name and not os.path.isabs(name) and not name.startswith(("/", "\\")) and ".." not in parts
                  and not re.match(r"^[A-Za-z]:", name))
        if not inside or os.path.commonpath([os.path.realpath(path), realFolder]) != realFolder:
            raise ValueError(f"'{headerPath}' names the data file '{name}' outside its own folder (an absolute path, "
                             "'..' or a symbolic link out); a detached data file must lie beside its header, in the "
                             "same folder or below. It was not loaded")
        if not os.path.lexists(path):
            raise _incomplete(headerPath, f"its data file '{name}' is missing")
        requireRegularFile(path, "Data file")
        paths.append(path)
    return paths


def _checkNrrd(path, limit):
    fields, headerLength, lines = _nrrdHeader(path)
    try:
        sizes = [int(size) for size in fields["sizes"].split()]
        typeBytes = NRRD_TYPE_BYTES[fields["type"].lower()]
    except (KeyError, ValueError):
        if fields.get("type", "").lower() == "block":
            typeBytes, sizes = None, None
        else:
            raise _incomplete(path, f"its header lacks valid 'sizes' / 'type' ({fields.get('sizes')}, "
                                    f"{fields.get('type')})") from None
    dataKey = next((key for key in ("data file", "datafile") if fields.get(key)), None)
    dataFiles, single = None, False
    if dataKey is not None:
        index = next(i for i, line in enumerate(lines) if line.lower().startswith(dataKey + ":"))
        names = _dataFileList(path, fields[dataKey], lines[index + 1:])
        dataFiles, single = requireDataFilesBeside(path, names), names == [fields[dataKey]]
    if sizes is None:
        return  # block type: sizes unknown here, left to the reader
    if any(size < 1 for size in sizes):
        raise _incomplete(path, f"its header announces sizes {sizes}")
    encoding = fields.get("encoding", "raw").lower()
    expected = math.prod(sizes) * typeBytes
    _requireBudget(path, math.prod(sizes), expected, limit)
    offset = headerLength
    if dataFiles is not None:
        if not single:
            return  # several data files (a list or a pattern): their sizes are left to the reader
        path, offset = dataFiles[0], 0
    byteSkip = int(fields.get("byte skip", fields.get("byteskip", "0")) or 0)
    if fields.get("line skip", fields.get("lineskip", "0")) not in ("0", ""):
        return  # line skips are rare; left to the reader
    if encoding in ("ascii", "text", "txt", "hex"):
        _checkTextNrrdData(path, offset, encoding, math.prod(sizes), expected)
        return
    streamLimit = expected + max(byteSkip, 0) + SLACK_BYTES
    if encoding == "raw":
        if byteSkip == -1:
            available = os.path.getsize(path) - offset  # data is at the end of the file
        else:
            available = os.path.getsize(path) - offset - byteSkip
    elif encoding in ("gzip", "gz"):
        available = _streamLength(path, _gzipOpener, offset, "gzip data", streamLimit) - max(byteSkip, 0)
    elif encoding in ("bzip2", "bz2"):
        available = _streamLength(path, _bz2Opener, offset, "bzip2 data", streamLimit) - max(byteSkip, 0)
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
    """(fields {lowercase key: value}, header length in bytes, the lines after ElementDataFile) of a MetaImage
    file, read from at most MAX_HEADER_BYTES."""
    fields, length = {}, 0
    with open(path, "rb") as file:
        while length <= MAX_HEADER_BYTES:
            rawLine = file.readline(MAX_HEADER_BYTES + 1 - length)
            if not rawLine:
                break
            length += len(rawLine)
            key, separator, value = rawLine.decode("latin-1").partition("=")
            if not separator:
                raise _incomplete(path, "its MetaImage header has a line without '='")
            fields[key.strip().lower()] = value.strip()
            if key.strip().lower() == "elementdatafile":
                following = []
                if value.strip().upper().startswith("LIST"):  # the file names follow, one a line
                    following = file.read(MAX_HEADER_BYTES + 1 - length).decode("latin-1").splitlines()
                return fields, length, following
    raise _incomplete(path, f"its MetaImage header has no ElementDataFile line within {MAX_HEADER_BYTES} bytes")


def _checkMetaImage(path, limit):
    fields, headerLength, following = _metaHeader(path)
    try:
        sizes = [int(size) for size in fields["dimsize"].split()]
        typeBytes = META_TYPE_BYTES[fields["elementtype"].upper()]
        channels = int(fields.get("elementnumberofchannels", "1"))
    except (KeyError, ValueError):
        raise _incomplete(path, "its MetaImage header lacks a valid DimSize / ElementType") from None
    expected = math.prod(sizes) * typeBytes * channels
    _requireBudget(path, math.prod(sizes), expected, limit)
    dataFile = fields["elementdatafile"]
    offset = headerLength
    if not dataFile:
        raise _incomplete(path, "its ElementDataFile is empty")
    if dataFile.upper() != "LOCAL":
        names = _dataFileList(path, dataFile, following)
        dataFiles = requireDataFilesBeside(path, names)
        if names != [dataFile]:
            return  # one file per slice: their sizes are left to the reader
        path = dataFiles[0]
        offset = 0
    headerSize = int(fields.get("headersize", "0") or 0)
    if headerSize < 0:
        return  # data at the end of the file: left to the reader
    offset += headerSize
    if fields.get("compresseddata", "false").lower() == "true":
        available = _streamLength(path, _ZlibStream, offset, "zlib data", expected + SLACK_BYTES)
    else:
        available = os.path.getsize(path) - offset
    if available < expected:
        raise _incomplete(path, f"the header announces {math.prod(sizes)} values ({expected} bytes), "
                                f"the data holds {max(available, 0)} bytes")
