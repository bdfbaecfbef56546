"""One thin file per dashboard page; st.navigation runs each by its path (they are never imported)."""
