"""The Streamlit dashboard: `streamlit run dashboard/app.py` (pages in app_pages/, figures and widgets in ui/)."""
