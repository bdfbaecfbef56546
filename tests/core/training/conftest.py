"""Fixtures for training tests: the tiny dataset helper is importable as `tiny_dataset`."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
