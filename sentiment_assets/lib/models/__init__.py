"""Model families: parameters, fitting, fine-tuning, tuning, bundles on disk, the behaviour suite."""
