"""Widgets of the orch-tui terminal UI (the job table and the run gauges)."""
