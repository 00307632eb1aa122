"""Plain computation (numpy/astropy only): tiling, WTML values, combining, QC, organising."""
