"""orch-tui: run one command over many input files, calibrated to the machine."""

__version__ = "0.1.0"
