"""Training schedules and plan presets (plain data, read by the Logic, the CLI and the reports).

"full" is nnU-Net's own schedule (1000 epochs of 250 iterations: days on a CPU, hours on a GPU). "short-cpu" is a
CPU-friendly short schedule to try the pipeline end to end on a laptop: it is labelled as such everywhere, and a
model trained with it is a demonstration, not a model to rely on. The "tiny" plan preset shrinks nnU-Net's plan to
a 3-stage network with features [4, 8, 16] and 32³ patches (what the tests' tiny models use).
"""

SCHEDULES = {
    "full": {"epochs": 1000, "iterationsPerEpoch": 250, "validationIterations": 50,
               "label": "nnU-Net's own schedule"},
    "short-cpu": {"epochs": 20, "iterationsPerEpoch": 25, "validationIterations": 5, "initialLearningRate": 0.02,
                  "label": "short CPU schedule: to try the pipeline, not a model to rely on"},
}
PLAN_PRESETS = {
    "tiny": {"patchSize": [32, 32, 32], "batchSize": 2,
             "architecture": {"n_stages": 3, "features_per_stage": [4, 8, 16], "kernel_sizes": [[3, 3, 3]] * 3,
                              "strides": [[1, 1, 1], [2, 2, 2], [2, 2, 2]], "n_conv_per_stage": [2, 2, 2],
                              "n_conv_per_stage_decoder": [2, 2]}},
}
CONFIGURATIONS = ("2d", "3d_fullres", "3d_lowres", "3d_cascade_fullres")


def schedule(name="short-cpu", epochs=None, iterationsPerEpoch=None):
    """The schedule's numbers (a copy), epochs / iterations replaced when given; ValueError for bad values."""
    if name not in SCHEDULES:
        raise ValueError(f"Unknown training schedule {name!r}; known: {', '.join(SCHEDULES)}")
    result = dict(SCHEDULES[name], name=name)
    for key, value in (("epochs", epochs), ("iterationsPerEpoch", iterationsPerEpoch)):
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key} must be a whole number >= 1, got {value!r}")
            result[key] = value
    if epochs is not None or iterationsPerEpoch is not None:
        result["label"] += f" ({result['epochs']} epochs x {result['iterationsPerEpoch']} iterations)"
    return result


def planOverrides(preset):
    """None, a preset name or a dict of overrides (patchSize, batchSize, architecture)."""
    if preset is None or isinstance(preset, dict):
        return preset
    if preset not in PLAN_PRESETS:
        raise ValueError(f"Unknown plan preset {preset!r}; known: {', '.join(PLAN_PRESETS)}")
    return PLAN_PRESETS[preset]


def requireConfigurations(configurations):
    configurations = [configurations] if isinstance(configurations, str) else list(configurations or [])
    unknown = [name for name in configurations if name not in CONFIGURATIONS]
    if not configurations or unknown:
        raise ValueError(f"Configurations must be among {', '.join(CONFIGURATIONS)}; got {configurations}")
    if "3d_cascade_fullres" in configurations and "3d_lowres" not in configurations:
        raise ValueError("The cascade (3d_cascade_fullres) needs 3d_lowres as well")
    return configurations
