"""Shadow comparison: pair records, the windowed pairing join, the noise model and canary judgment."""
