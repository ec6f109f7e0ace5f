"""orch-tui: run one command over many input files, calibrated to the machine."""

__version__ = "0.1.0"


def version_line() -> str:
    """What `orch-tui --version` prints (the fast path and argparse's alike)."""
    return f"orch-tui {__version__}"
