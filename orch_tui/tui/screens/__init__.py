"""Full-screen views of the TUI: config/preflight, calibration, run, detail and finish."""
