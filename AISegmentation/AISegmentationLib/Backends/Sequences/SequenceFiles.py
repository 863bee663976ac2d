"""A sequence on disk for the command line: a 4D NIfTI, or a folder of 3D frames sorted naturally by name
("frame2" before "frame10"). Both are untrusted: everything is checked from the headers before a voxel is read or a
backend runs: a 4D image must be whole and fit the image budget (FileIntegrity), hold at most MAX_FRAMES frames; a
folder must hold only regular image files (no subfolder, link or other file), at most MAX_FRAMES, all on one grid.

    frames = loadSequenceFiles(logic, "cine.nii.gz")     # [(index value, volume node, frame name)]
"""

import logging
import os
import re
import shutil
import tempfile

from ...FileIntegrity import requireRegularFile, requireWholeImageFile

MAX_FRAMES = 1000
FRAME_EXTENSIONS = (".nii.gz", ".nii", ".nrrd", ".mha")
FOUR_D_EXTENSIONS = (".nii.gz", ".nii")


def naturalKey(name):
    """Sort key: digit runs compare as numbers ("t2" < "t10"), the rest case-insensitively."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower()) for part in re.split(r"(\d+)", name)]


def frameName(fileName):
    """A frame file's name without its image extension."""
    lower = fileName.lower()
    for extension in FRAME_EXTENSIONS:
        if lower.endswith(extension):
            return fileName[:-len(extension)]
    return fileName


def _imageInformation(path):
    """(dimension, size, spacing, origin, direction) from the header alone (SimpleITK reads no voxel here)."""
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(os.fspath(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as error:
        raise ValueError(f"'{path}' is not an image that can be read: {str(error).strip().splitlines()[-1]}") from None
    return (reader.GetDimension(), reader.GetSize(), reader.GetSpacing(), reader.GetOrigin(), reader.GetDirection())


def fourDFrameCount(path):
    """Number of frames of a 4D NIfTI file (> 1 along its 4th axis), or 0 for anything else."""
    path = os.fspath(path)
    if not os.path.isfile(path) or not path.lower().endswith(FOUR_D_EXTENSIONS):
        return 0
    try:
        dimension, size = _imageInformation(path)[:2]
    except ValueError:
        return 0
    return size[3] if dimension == 4 and size[3] > 1 else 0


def checkSequenceFiles(path):
    """("4d", [path]) or ("folder", [frame files in natural order]), checked from the headers; ValueError else."""
    path = os.fspath(path)
    if not os.path.lexists(path):
        raise ValueError(f"Sequence '{path}' does not exist")
    if os.path.isdir(path):
        return "folder", _checkFolder(path)
    requireRegularFile(path, "Sequence file")
    if not path.lower().endswith(FOUR_D_EXTENSIONS):
        raise ValueError(f"Sequence '{path}' is neither a 4D NIfTI file (.nii, .nii.gz) nor a folder of frames")
    requireWholeImageFile(path)  # the image budget and a whole file, from the header
    dimension, size = _imageInformation(path)[:2]
    if dimension != 4 or size[3] < 1:
        raise ValueError(f"'{path}' is a {dimension}D image, not a 4D sequence (give a 3D image without --sequence)")
    if size[3] > MAX_FRAMES:
        raise ValueError(f"'{path}' announces {size[3]} frames, more than the limit of {MAX_FRAMES}; it was not "
                         "loaded")
    return "4d", [path]


def _checkFolder(folder):
    names = sorted(os.listdir(folder), key=naturalKey)
    if not names:
        raise ValueError(f"The folder of frames '{folder}' is empty")
    if len(names) > MAX_FRAMES:
        raise ValueError(f"The folder of frames '{folder}' holds {len(names)} entries, more than the limit of "
                         f"{MAX_FRAMES} frames")
    files = []
    for name in names:
        path = os.path.join(folder, name)
        if os.path.islink(path) or not os.path.isfile(path) or not name.lower().endswith(FRAME_EXTENSIONS):
            raise ValueError(f"The folder of frames '{folder}' holds '{name}', which is not a frame: only regular "
                             f"image files ({', '.join(FRAME_EXTENSIONS)}), one 3D frame each, may be there")
        requireWholeImageFile(path)
        files.append(path)
    first = None
    for path in files:
        dimension, size, spacing, origin, direction = _imageInformation(path)
        if dimension != 3:
            raise ValueError(f"Frame '{os.path.basename(path)}' is a {dimension}D image; each frame must be 3D")
        geometry = (size, spacing, origin, direction)
        if first is None:
            first = (os.path.basename(path), geometry)
        elif size != first[1][0] or any(abs(a - b) > 1e-4 * max(1.0, abs(b)) for got, want in zip(
                geometry[1:], first[1][1:]) for a, b in zip(got, want)):
            raise ValueError(f"Frame '{os.path.basename(path)}' lies on another grid (size, spacing, origin or axes) "
                             f"than '{first[0]}': every frame must be on one grid")
    return files


def loadSequenceFiles(logic, path):
    """[(index value "0".., volume node, frame name)] of a 4D NIfTI or a folder of frames (see checkSequenceFiles);
    ValueError before anything is loaded when the input is refused, and the scene unchanged."""
    kind, files = checkSequenceFiles(path)
    frames = []
    try:
        if kind == "folder":
            for number, file in enumerate(files):
                frames.append((str(number), logic.loadVolume(file), frameName(os.path.basename(file))))
        else:
            frames = _loadFourD(logic, files[0])
    except BaseException:
        for _, node, _ in frames:
            logic.scene.RemoveNode(node)
        raise
    logging.info("Sequence '%s': %d frames", path, len(frames))
    return frames


def _loadFourD(logic, path):
    """The frames of a 4D image, each written as a 3D NIfTI (SimpleITK) and loaded like any volume."""
    import SimpleITK as sitk

    try:
        image = sitk.ReadImage(os.fspath(path))
    except RuntimeError as error:
        raise ValueError(f"Could not read the 4D image '{path}': {str(error).strip().splitlines()[-1]}") from None
    size = list(image.GetSize())
    base = frameName(os.path.basename(path))
    folder = tempfile.mkdtemp(prefix="AISegmentation-frames-")
    frames = []
    try:
        for number in range(size[3]):
            frame = sitk.Extract(image, size[:3] + [0], [0, 0, 0, number])
            file = os.path.join(folder, f"{base}_{number:04d}.nii.gz")
            sitk.WriteImage(frame, file)
            name = f"{base}_{number:04d}"
            frames.append((str(number), logic.loadVolume(file, name=name), name))
            os.remove(file)
    except BaseException:
        for _, node, _ in frames:
            logic.scene.RemoveNode(node)
        raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return frames
