"""omr_core: pure-Python core of the OMR training dashboard (never imports streamlit)."""

from __future__ import annotations

__version__ = "0.1.0"
