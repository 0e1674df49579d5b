"""The Streamlit operations console: monitoring, alert portal, review queue, thresholds, configuration, access.

`streamlit run dashboard/app.py -- --output out` (or `make dashboard`). Pages only draw and call
`access.accounts`, `ops.health` and `ops.sysconfig`, where every permission is checked.
"""
