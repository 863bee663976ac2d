"""The interactive tests' scene: a volume with two separated spheres A and B, with a non-trivial geometry."""

import numpy as np

from DevTools.SyntheticImages import ball, makeVolume, rasOfIjk

SHAPE = (40, 48, 64)  # KJI
CENTER_A = (20, 24, 18)
CENTER_B = (20, 24, 46)
RADIUS = 7
SPACING = (0.8, 0.9, 1.2)  # IJK
ORIGIN = (-20.0, 15.0, 7.0)
DIRECTIONS = np.diag([-1.0, -1.0, 1.0])  # LPS-like axes, as DICOM volumes have


class TwoSpheres:
    def __init__(self, logic, seed=0):
        rng = np.random.default_rng(seed)
        self.maskA = ball(SHAPE, CENTER_A, (RADIUS,) * 3)
        self.maskB = ball(SHAPE, CENTER_B, (RADIUS,) * 3)
        image = 10 + 100 * self.maskA + 140 * self.maskB + rng.normal(0, 4, SHAPE)
        self.volume = makeVolume(logic, image.astype(np.int16), spacing=SPACING, origin=ORIGIN,
                                 directions=DIRECTIONS, name="two spheres")
        self.logic = logic
        self.segmentation = logic.createSegmentation(self.volume, "interactive")

    def ras(self, kji):
        """RAS of a (possibly fractional) KJI position."""
        return rasOfIjk(self.volume, np.asarray(kji, float)[::-1])

    def segment(self, name):
        return self.logic.getOrAddSegment(self.segmentation, name)

    def array(self, segmentId):
        return self.logic.segmentArray(self.segmentation, segmentId, self.volume).astype(bool)

    def boxCorners(self, center, halfSize, flatAxis=0):
        """Two RAS corners of a box around a KJI center, flat (one slice) along flatAxis."""
        low = np.array(center, float) - halfSize
        high = np.array(center, float) + halfSize
        low[flatAxis] = high[flatAxis] = center[flatAxis]
        return [self.ras(low), self.ras(high)]

    def circle(self, center, radius, count=24):
        """RAS points of a closed polygon around a KJI center on its K slice."""
        angles = np.linspace(0, 2 * np.pi, count, endpoint=False)
        return [self.ras((center[0], center[1] + radius * np.sin(a), center[2] + radius * np.cos(a)))
                for a in angles]

    def scribbleLine(self, center, halfLength=4):
        """KJI mask: a short line along I through center on its K slice, 2 voxels thick."""
        mask = np.zeros(SHAPE, np.uint8)
        k, j, i = center
        mask[k, j:j + 2, i - halfLength:i + halfLength + 1] = 1
        return mask
