"""Atlas registration with SimpleITK: for CT to CT (both in Hounsfield units) an exhaustive search of the translation
along the slice axis (correlation in a soft-tissue-to-bone window), a rigid or affine stage (Mattes mutual
information), then an optional deformable stage (B-spline on mutual information, or diffeomorphic demons on two
levels), on images resampled to a coarse
registration grid. Pure SimpleITK: no MRML, so it runs in a worker thread.

``progress(fraction, message)`` is called from the registration's iteration events; ``cancelled()`` is asked there
too, and when it answers True the running stage stops and :class:`RegistrationCancelled` is raised.
"""

import logging
from dataclasses import dataclass

import SimpleITK as sitk

LOG = logging.getLogger("AISegmentation.Atlas")

LINEAR_TRANSFORMS = ("rigid", "affine")
DEFORMABLE_METHODS = ("none", "bspline", "demons")


class RegistrationCancelled(RuntimeError):
    """The registration was cancelled; nothing was changed."""


@dataclass
class RegistrationOptions:
    """What the registration does; see the plugin's option declarations for the user-facing help."""

    linear: str = "affine"  # rigid | affine
    deformable: str = "demons"  # none | bspline | demons
    linearIterations: int = 200
    deformableIterations: int = 50
    gridSpacingMm: float = 50.0  # B-spline control-point spacing
    demonsSmoothingMm: float = 4.0  # standard deviation of the demons field smoothing
    registrationSpacingMm: float = 4.0  # the images are resampled to at least this spacing for registration
    samplingFraction: float = 0.25  # of the fixed image's voxels, for mutual information
    seed: int = 20  # random sampling seed: the same inputs give the same result
    search: bool = True  # search the atlas's position along the slice axis before the linear stage

    def validate(self):
        if self.linear not in LINEAR_TRANSFORMS:
            raise ValueError(f"linear must be one of {', '.join(LINEAR_TRANSFORMS)} (got {self.linear!r})")
        if self.deformable not in DEFORMABLE_METHODS:
            raise ValueError(f"deformable must be one of {', '.join(DEFORMABLE_METHODS)} (got {self.deformable!r})")
        for name in ("linearIterations", "deformableIterations"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a whole number >= 0 (got {value!r})")
        for name in ("gridSpacingMm", "demonsSmoothingMm", "registrationSpacingMm"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < float("inf"):
                raise ValueError(f"{name} must be a finite number > 0 (got {value!r})")
        if not 0 < self.samplingFraction <= 1:
            raise ValueError(f"samplingFraction must be in (0, 1] (got {self.samplingFraction!r})")
        return self


def coarseImage(image, spacingMm):
    """The image as float32, smoothed and resampled so that no axis is finer than spacingMm."""
    image = sitk.Cast(image, sitk.sitkFloat32)
    spacing = [max(s, spacingMm) for s in image.GetSpacing()]
    if list(spacing) == list(image.GetSpacing()):
        return image
    size = [max(1, int(round(n * s / t))) for n, s, t in zip(image.GetSize(), image.GetSpacing(), spacing)]
    sigmas = [max(0.0, (t * t - s * s)) ** 0.5 / 2.0 for s, t in zip(image.GetSpacing(), spacing)]
    smoothed = sitk.SmoothingRecursiveGaussian(image, sigmas)
    return sitk.Resample(smoothed, size, sitk.Transform(), sitk.sitkLinear, image.GetOrigin(), spacing,
                         image.GetDirection(), 0.0, sitk.sitkFloat32)


def foreground(image):
    """The body (Otsu's threshold: above it 1, else 0) as float: its centre of mass ignores air and the table's
    thin shell better than the intensities' does."""
    return sitk.Cast(sitk.OtsuThreshold(image, 0, 1), sitk.sitkFloat32)


class _Stage:
    """Progress and cancel for one stage: its iterations fill [start, end] of the whole registration."""

    def __init__(self, progress, cancelled, message, start, end, iterations):
        self.progress, self.cancelled = progress, cancelled
        self.message, self.start, self.end = message, start, end
        self.iterations = max(1, iterations)
        self.count = 0
        self.wasCancelled = False

    def step(self, stop):
        self.count += 1
        if self.cancelled is not None and self.cancelled():
            self.wasCancelled = True
            stop()
            return
        if self.progress is not None:
            fraction = min(1.0, self.count / self.iterations)
            self.progress(self.start + (self.end - self.start) * fraction, self.message)

    def finish(self):
        if self.wasCancelled or (self.cancelled is not None and self.cancelled()):
            raise RegistrationCancelled("The atlas registration was cancelled")


def _mutualInformationMethod(fixed, options):
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(options.samplingFraction, options.seed)
    method.SetInterpolator(sitk.sitkLinear)
    return method


def searchTranslation(fixed, moving, initial, options, stage):
    """Best translation along the target's slice axis (the atlas's whole extent, in steps of twice the registration
    spacing), and a few steps across it, by mutual information: a target that covers only a slab of the atlas's
    body (or the reverse) starts where the anatomy matches, not where the centres of mass are."""
    method = _mutualInformationMethod(fixed, options)
    step = 2.0 * options.registrationSpacingMm
    atlasLength = moving.GetSize()[2] * moving.GetSpacing()[2]
    slices = max(1, int(atlasLength / 2.0 / step))
    method.SetOptimizerAsExhaustive([0, 0, 0, 1, 1, slices], stepLength=step)
    method.SetOptimizerScales([1, 1, 1, 2, 2, 1])
    method.SetInitialTransform(initial, inPlace=True)
    method.AddCommand(sitk.sitkIterationEvent, lambda: stage.step(method.StopRegistration))
    method.Execute(fixed, moving)
    stage.finish()
    LOG.info("Translation search: %d positions, best metric %.4f at %s", stage.count, method.GetMetricValue(),
             initial.GetTranslation())
    return initial


HU_WINDOW = (-200.0, 400.0)  # soft tissue to bone: the window the CT-to-CT search and demons compare


def looksLikeCt(image):
    """Whether the image holds Hounsfield units: air near -1000 and tissue above 0."""
    statistics = sitk.MinimumMaximumImageFilter()
    statistics.Execute(image)
    return statistics.GetMinimum() <= -900.0 and statistics.GetMaximum() >= 200.0


def ctWindow(image):
    return sitk.Clamp(image, sitk.sitkFloat32, *HU_WINDOW)


def _extentAlong(image, axis):
    """(lowest, highest) physical coordinate along axis (0, 1, 2) of the image's voxel centres."""
    size = [n - 1 for n in image.GetSize()]
    corners = [image.TransformIndexToPhysicalPoint([i * size[0], j * size[1], k * size[2]])
               for i in (0, 1) for j in (0, 1) for k in (0, 1)]
    return min(c[axis] for c in corners), max(c[axis] for c in corners)


def searchSliceOffset(fixed, moving, initial, options, stage):
    """CT to CT: every translation along the slice axis (the physical axis closest to the target's slice direction)
    where the target lies inside the atlas (or the atlas inside the target), one registration spacing apart, scored
    by the correlation of the HU clipped to a soft-tissue-to-bone window over the target's extent; the best becomes
    the start. Exhaustive, so the several optima that mutual information has along the body do not matter."""
    direction = fixed.GetDirection()
    axis = max(range(3), key=lambda row: abs(direction[3 * row + 2]))
    fixedLow, fixedHigh = _extentAlong(fixed, axis)
    movingLow, movingHigh = _extentAlong(moving, axis)
    low, high = sorted((movingLow - fixedLow, movingHigh - fixedHigh))
    steps = int((high - low) / 2.0 / options.registrationSpacingMm)
    start = sitk.Euler3DTransform(initial)
    translation = list(initial.GetTranslation())
    translation[axis] = (low + high) / 2.0
    start.SetTranslation(translation)
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsCorrelation()
    method.SetInterpolator(sitk.sitkLinear)
    numberOfSteps = [0] * 6
    numberOfSteps[3 + axis] = steps
    method.SetOptimizerAsExhaustive(numberOfSteps, stepLength=options.registrationSpacingMm)
    method.SetOptimizerScales([1.0] * 6)
    method.SetInitialTransform(start, inPlace=True)
    method.AddCommand(sitk.sitkIterationEvent, lambda: stage.step(method.StopRegistration))
    method.Execute(ctWindow(fixed), ctWindow(moving))
    stage.finish()
    LOG.info("Slice-axis search: %d positions over %.0f mm, best correlation %.4f at %s", stage.count, high - low,
             -method.GetMetricValue(), [round(t, 1) for t in start.GetTranslation()])
    return start


def linearTransform(fixed, moving, options, progress=None, cancelled=None, start=0.0, end=0.5):
    """Rigid or affine transform (fixed -> moving points) by Mattes mutual information, initialised by the images'
    bodies' centres of mass (and a translation search when options.search), on two resolution levels."""
    initial = sitk.CenteredTransformInitializer(foreground(fixed), foreground(moving), sitk.Euler3DTransform(),
                                                sitk.CenteredTransformInitializerFilter.MOMENTS)
    ct = looksLikeCt(fixed) and looksLikeCt(moving)
    if options.search and ct:
        middle = start + (end - start) * 0.2
        steps = int(max(moving.GetSize()[2] * moving.GetSpacing()[2], fixed.GetSize()[2] * fixed.GetSpacing()[2])
                    / options.registrationSpacingMm) + 1
        search = _Stage(progress, cancelled, "Searching the atlas's position", start, middle, steps)
        initial = searchSliceOffset(fixed, moving, initial, options, search)
        start = middle
    elif options.search:
        middle = start + (end - start) * 0.3
        slices = max(1, int(moving.GetSize()[2] * moving.GetSpacing()[2] / 4.0 / options.registrationSpacingMm))
        search = _Stage(progress, cancelled, "Searching the atlas's position", start, middle, 9 * (2 * slices + 1))
        initial = searchTranslation(fixed, moving, initial, options, search)
        start = middle
    transform = initial if options.linear == "rigid" else sitk.AffineTransform(3)
    if options.linear == "affine":
        transform.SetCenter(initial.GetCenter())
        transform.SetTranslation(initial.GetTranslation())
    if options.linearIterations == 0:
        return transform
    method = _mutualInformationMethod(fixed, options)
    method.SetOptimizerAsRegularStepGradientDescent(learningRate=1.0, minStep=1e-3,
                                                    numberOfIterations=options.linearIterations,
                                                    gradientMagnitudeTolerance=1e-6)
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel([2, 1])
    method.SetSmoothingSigmasPerLevel([1.0, 0.0])
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    method.SetInitialTransform(transform, inPlace=True)
    stage = _Stage(progress, cancelled, f"{options.linear.capitalize()} registration", start, end,
                   2 * options.linearIterations)
    method.AddCommand(sitk.sitkIterationEvent, lambda: stage.step(method.StopRegistration))
    method.Execute(fixed, moving)
    stage.finish()
    LOG.info("%s registration: metric %.4f after %d iterations (%s)", options.linear, method.GetMetricValue(),
             stage.count, method.GetOptimizerStopConditionDescription())
    return transform


def bsplineTransform(fixed, moving, linear, options, progress=None, cancelled=None, start=0.5, end=1.0):
    """B-spline refinement (mutual information, L-BFGS-B) on top of the linear transform."""
    physicalSize = [n * s for n, s in zip(fixed.GetSize(), fixed.GetSpacing())]
    meshSize = [max(1, int(round(length / options.gridSpacingMm))) for length in physicalSize]
    bspline = sitk.BSplineTransformInitializer(fixed, meshSize, order=3)
    method = _mutualInformationMethod(fixed, options)
    method.SetOptimizerAsLBFGSB(gradientConvergenceTolerance=1e-5, numberOfIterations=options.deformableIterations,
                                maximumNumberOfCorrections=5,
                                maximumNumberOfFunctionEvaluations=2 * options.deformableIterations,
                                costFunctionConvergenceFactor=1e7)
    method.SetMovingInitialTransform(linear)
    method.SetInitialTransform(bspline, inPlace=True)
    stage = _Stage(progress, cancelled, "Deformable registration (B-spline)", start, end,
                   options.deformableIterations)
    method.AddCommand(sitk.sitkIterationEvent, lambda: stage.step(method.StopRegistration))
    method.Execute(fixed, moving)
    stage.finish()
    LOG.info("B-spline registration: metric %.4f after %d iterations", method.GetMetricValue(), stage.count)
    return sitk.CompositeTransform([linear, bspline])


def demonsTransform(fixed, moving, linear, options, progress=None, cancelled=None, start=0.5, end=1.0):
    """Diffeomorphic demons refinement on the linearly aligned, histogram-matched moving image (same modality; CT
    compared in a soft-tissue-to-bone window), on two levels: at twice the registration spacing (along the axes
    with enough voxels), whose field starts the full level, so displacements larger than the smoothing are caught."""
    outside = 0.0
    if looksLikeCt(fixed) and looksLikeCt(moving):  # same HU scale: compare the soft-tissue-to-bone window
        fixed, moving, outside = ctWindow(fixed), ctWindow(moving), HU_WINDOW[0]
    aligned = sitk.Resample(moving, fixed, linear, sitk.sitkLinear, outside, sitk.sitkFloat32)
    aligned = sitk.HistogramMatching(aligned, fixed, numberOfHistogramLevels=256, numberOfMatchPoints=15,
                                     thresholdAtMeanIntensity=True)
    shrink = [2 if n >= 16 else 1 for n in fixed.GetSize()]
    levels = [shrink, [1, 1, 1]] if max(shrink) > 1 else [[1, 1, 1]]
    stage = _Stage(progress, cancelled, "Deformable registration (demons)", start, end,
                   len(levels) * options.deformableIterations)
    field = None
    for factors in levels:
        levelFixed = sitk.BinShrink(fixed, factors) if max(factors) > 1 else fixed
        levelMoving = sitk.BinShrink(aligned, factors) if max(factors) > 1 else aligned
        demons = sitk.DiffeomorphicDemonsRegistrationFilter()
        demons.SetNumberOfIterations(options.deformableIterations)
        demons.SetSmoothDisplacementField(True)
        demons.SetStandardDeviations(options.demonsSmoothingMm / min(levelFixed.GetSpacing()))
        demons.AddCommand(sitk.sitkIterationEvent, lambda demons=demons: stage.step(demons.Abort))
        try:
            if field is None:
                field = demons.Execute(levelFixed, levelMoving)
            else:
                initial = sitk.Resample(field, levelFixed, sitk.Transform(), sitk.sitkLinear, 0.0, field.GetPixelID())
                field = demons.Execute(levelFixed, levelMoving, initial)
        except RuntimeError:
            if stage.wasCancelled:
                raise RegistrationCancelled("The atlas registration was cancelled") from None
            raise
        stage.finish()
    displacement = sitk.DisplacementFieldTransform(sitk.Cast(field, sitk.sitkVectorFloat64))
    return sitk.CompositeTransform([linear, displacement])


def registerAtlas(target, atlasImage, options, progress=None, cancelled=None):
    """Transform mapping target points to atlas points (resample the atlas's labels with it onto the target)."""
    options.validate()
    fixed = coarseImage(target, options.registrationSpacingMm)
    moving = coarseImage(atlasImage, options.registrationSpacingMm)
    linearEnd = 1.0 if options.deformable == "none" else 0.4
    transform = linearTransform(fixed, moving, options, progress, cancelled, 0.0, linearEnd)
    if options.deformable == "none" or options.deformableIterations == 0:
        return transform
    refine = bsplineTransform if options.deformable == "bspline" else demonsTransform
    return refine(fixed, moving, transform, options, progress, cancelled, linearEnd, 1.0)
