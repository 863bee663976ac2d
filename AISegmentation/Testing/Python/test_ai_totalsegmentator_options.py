"""TotalSegmentator's own switches (robust crop, small blobs removed, body crop, split, higher-order resampling),
declared like every option: validated and checked for combinations before any process starts (quick: no
environment; the run itself is in test_ai_totalsegmentator.py)."""

import pytest

from AISegmentationLib.Backends import Registry
from AISegmentationLib.Backends.Backend import BackendContext
from AISegmentationLib.Backends.Options import validateOptions

SWITCHES = ("robustCrop", "removeSmallBlobs", "bodySeg", "forceSplit", "higherOrderResampling")


def prepare(**options):
    backend = Registry.getBackend("totalsegmentator")
    return backend.prepare(BackendContext({}, dict), **validateOptions(backend.options, options))


def test_the_switches_are_declared_off_by_default_with_their_flags():
    options = {option.name: option for option in Registry.getBackend("totalsegmentator").options}
    assert all(options[name].type == "bool" and options[name].default is False for name in SWITCHES)
    assert [options[name].cliFlag for name in SWITCHES] == ["robust-crop", "remove-small-blobs", "body-seg",
                                                            "force-split", "higher-order-resampling"]


def test_switches_on_reach_the_child_and_the_provenance():
    prepared = prepare(fast=True, removeSmallBlobs=True, robustCrop=True, roiSubset=["liver"])
    assert prepared.parameters["removeSmallBlobs"] is True and prepared.childOptions["robustCrop"] is True
    assert "forceSplit" not in prepared.parameters  # off: not named, the provenance stays as before
    with pytest.raises(ValueError, match="Option 'forceSplit' must be True or False"):
        prepare(forceSplit="yes")


@pytest.mark.parametrize("options", [{"bodySeg": True, "roiSubset": ["liver"]}, {"bodySeg": True, "task": "total_mr"}])
def test_a_body_crop_that_totalsegmentator_would_ignore_is_refused(options):
    with pytest.raises(ValueError, match="bodySeg .* works only for CT tasks without an ROI subset"):
        prepare(**options)
