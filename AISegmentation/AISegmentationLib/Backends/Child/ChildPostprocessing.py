"""An nnU-Net model's own post-processing (``postprocessing.pkl``, written by nnU-Net's
``nnUNetv2_determine_postprocessing``), applied inside the child process to the predicted label map.

The file is a pickle of (functions, keyword arguments). It is read with an unpickler that admits only nnU-Net's own
post-processing functions and plain values (numbers, strings, tuples, lists, dicts): a crafted pickle that names any
other callable is refused before anything of it runs (as checkpoints are, see ChildCheckpoints).
"""

import io
import pickle

from ChildProtocol import UserError

ALLOWED_MODULE = "nnunetv2.postprocessing.remove_connected_components"
ALLOWED_BUILTINS = {"tuple", "list", "dict", "set", "frozenset", "int", "float", "bool", "str"}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module == ALLOWED_MODULE and not name.startswith("_"):
            return super().find_class(module, name)
        if module == "builtins" and name in ALLOWED_BUILTINS:
            return super().find_class(module, name)
        if module in ("numpy", "numpy.core.multiarray", "numpy._core.multiarray") and name == "scalar":
            return super().find_class(module, name)
        if module == "numpy" and name == "dtype":
            return super().find_class(module, name)
        raise UserError(f"The model's postprocessing.pkl names '{module}.{name}', which is not one of nnU-Net's "
                        f"post-processing functions; it was not run. Remove the file or turn post-processing off.")


def loadPostprocessing(path):
    """(functions, keyword arguments) of a postprocessing.pkl; UserError for anything else."""
    with open(path, "rb") as file:
        data = file.read()
    try:
        functions, arguments = _RestrictedUnpickler(io.BytesIO(data)).load()
    except UserError:
        raise
    except Exception as error:  # noqa: BLE001 - a broken file is the user's to fix
        raise UserError(f"Cannot read the model's post-processing file {path}: {error}") from None
    if not (isinstance(functions, list) and isinstance(arguments, list) and len(functions) == len(arguments)
            and all(callable(f) for f in functions) and all(isinstance(a, dict) for a in arguments)):
        raise UserError(f"The model's post-processing file {path} does not hold nnU-Net's (functions, arguments)")
    return functions, arguments


def applyPostprocessing(segmentation, loaded):
    """The label map after the loaded post-processing; returns (label map, names of the steps applied)."""
    functions, arguments = loaded
    for function, keywords in zip(functions, arguments):
        segmentation = function(segmentation, **keywords)
    return segmentation, [function.__name__ for function in functions]
