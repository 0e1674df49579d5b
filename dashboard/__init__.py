"""The Streamlit operations console (monitoring, alert portal, review queue, thresholds, admin).
Built by a later issue; it reads the hot store that `pipeline.store` defines."""
