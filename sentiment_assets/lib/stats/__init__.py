"""Statistics: classification metrics, drift tests, slices, calibration, estimates before labels, prior shift."""
