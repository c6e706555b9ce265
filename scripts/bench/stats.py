#!/usr/bin/env python3
"""Median, min and max of one field over the JSON lines of measure.py.

    stats.py FILE FIELD [SCALE]   ->  "median min max n" (each value divided by SCALE)
"""
import json
import statistics
import sys

path, field = sys.argv[1], sys.argv[2]
scale = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
vals = [json.loads(l)[field] / scale for l in open(path) if l.strip()]
if not vals:
    sys.exit(f"no values in {path}")
print(f"{statistics.median(vals):.2f} {min(vals):.2f} {max(vals):.2f} {len(vals)}")
