"""Every frame of a sequence (4D) through any backend: the job (SequenceJob), its frames in Slicer and on disk
(SequenceFrames, SequenceFiles) and its outputs (SequenceOutputs)."""
