"""Default page at "/": sends the visitor to the Training page, whose own URL (/training) is the one to bookmark."""

from __future__ import annotations

import streamlit as st

# Streamlit serves the default page at "/" and drops its url_path, so a Training page that is itself the default
# cannot be bookmarked as /training. This empty page is the default instead and forwards at once.
st.switch_page("app_pages/training.py")
