"""Pictures of a volume and its segmentations (the overview: three orthogonal slices with outlines) and of a
comparison (error and distance maps): what the demo, the cohort report and the classic tools' previews show."""
