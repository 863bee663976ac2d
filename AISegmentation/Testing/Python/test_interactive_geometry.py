"""nnInteractive prompt geometry and connection settings (no server needed)."""

import numpy as np
import pytest

from InteractiveScenes import CENTER_A, CENTER_B, SHAPE, TwoSpheres
from AISegmentationLib.Interactive import Prompts
from AISegmentationLib.Interactive.Connection import ServerSettings, isLoopbackHost, normalizeUrl
from AISegmentationLib.Boxes import boundingBox


@pytest.fixture
def spheres(logic):
    return TwoSpheres(logic)


def test_point_ras_to_kji_on_an_lps_volume(spheres):
    assert Prompts.pointKji(spheres.volume, spheres.ras(CENTER_B)) == CENTER_B
    assert Prompts.pointKji(spheres.volume, spheres.ras((20.4, 23.6, 46.2))) == CENTER_B
    with pytest.raises(ValueError, match=r"outside volume 'two spheres' \(IJK \(64, 24, 20\)"):
        Prompts.pointKji(spheres.volume, spheres.ras((20, 24, 64)))


def test_box_flat_along_one_axis_is_a_slice_and_is_clipped(spheres):
    box = Prompts.boxKji(spheres.volume, spheres.boxCorners(CENTER_A, 8))
    assert box == ((20, 21), (16, 33), (10, 27))
    box = Prompts.boxKji(spheres.volume, spheres.boxCorners((10, 24, 60), 8, flatAxis=1))
    assert box == ((2, 19), (24, 25), (52, 64))
    threeD = Prompts.boxKji(spheres.volume, [spheres.ras((5, 5, 5)), spheres.ras((10, 12, 14))])
    assert threeD == ((5, 11), (5, 13), (5, 15))


def test_box_from_eight_corners_of_an_oriented_box(spheres):
    corners = [spheres.ras((k, j, i)) for k in (18, 22) for j in (20, 28) for i in (14, 22)]
    assert Prompts.boxKji(spheres.volume, corners) == ((18, 23), (20, 29), (14, 23))


def test_lasso_fills_the_polygon_on_its_slice(spheres):
    mask, box = Prompts.lassoMask(spheres.volume, spheres.circle(CENTER_A, 6, count=48))
    assert mask.shape == SHAPE and mask[:20].sum() == 0 and mask[21:].sum() == 0
    assert abs(mask.sum() - np.pi * 36) < 12 and mask[CENTER_A] == 1
    assert box[0] == (20, 21) and box == boundingBox(mask)


def test_fill_polygon_square_and_triangle():
    square = Prompts.fillPolygon(np.array([[1.5, 1.5], [1.5, 5.5], [5.5, 5.5], [5.5, 1.5]]), (8, 8))
    assert square.sum() == 16 and square[2:6, 2:6].all()
    triangle = Prompts.fillPolygon(np.array([[0.0, 0.0], [0.0, 10.0], [10.0, 0.0]]), (12, 12))
    assert 40 <= triangle.sum() <= 60 and triangle[1, 1] and not triangle[9, 9]


def test_scribble_mask_checks(spheres):
    line = spheres.scribbleLine(CENTER_A)
    mask, box = Prompts.scribbleMask(spheres.volume, line)
    assert mask.sum() == 18 and box == ((20, 21), (24, 26), (14, 23))
    with pytest.raises(ValueError, match="needs"):
        Prompts.scribbleMask(spheres.volume, line[1:])


def test_urls_and_settings():
    assert normalizeUrl(" 127.0.0.1:1527/ ") == "http://127.0.0.1:1527"
    assert normalizeUrl("https://host.example/nninteractive/") == "https://host.example/nninteractive"
    for bad in ("", "ftp://host", "http://", "http://user:pw@host:1", "http://host:99999"):
        with pytest.raises(ValueError):
            normalizeUrl(bad)
    settings = ServerSettings("https://Host.Example", apiKey=" secret ")
    assert settings.origin == "https://host.example:443" and settings.apiKey == "secret"
    assert "secret" not in repr(settings) and settings.authorizationHeaders() == {"Authorization": "Bearer secret"}
    assert ServerSettings("http://[::1]:8000").origin == "http://[::1]:8000"
    assert isLoopbackHost("localhost") and isLoopbackHost("127.8.0.1") and not isLoopbackHost("10.0.0.1")
    with pytest.raises(ValueError, match="timeout"):
        ServerSettings("http://localhost", readTimeout=0)
    with pytest.raises(ValueError, match="protocol"):
        ServerSettings("http://localhost", protocol="v3")
