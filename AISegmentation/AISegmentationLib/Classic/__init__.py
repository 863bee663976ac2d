"""Classic segmentation tools on the segment editor logic: threshold (Threshold.py), level tracing (LevelTracing.py),
grow from seeds (GrowFromSeeds.py) and island clean-up (Islands.py). The facade (Logic.py) offers each of them."""
