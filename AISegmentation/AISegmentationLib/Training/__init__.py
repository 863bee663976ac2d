"""The course's training pipeline on nnU-Net v2's own code: dataset, plan, fit, evaluate (see TrainingLogic)."""
