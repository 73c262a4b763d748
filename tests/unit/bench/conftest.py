"""The benchmarks' modules (bench/) are scripts, not a package: their tests import them from there."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
