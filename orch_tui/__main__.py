"""`python -m orch_tui` and the `orch-tui` console script: one entry point, `main`.

`orch-tui --version` answers here, before the command line (argparse, the core, the control
client) is imported: that import costs several hundred milliseconds a version check need not pay.
Anything else goes to `orch_tui.cli.main` unchanged."""

import sys

from orch_tui import version_line


def main() -> int:
    """The version at once, or the full command line."""
    if sys.argv[1:] == ["--version"]:
        print(version_line())
        return 0
    # Deferred on purpose: importing the command line is what --version must not pay for.
    from orch_tui.cli import main as cli_main  # pylint: disable=import-outside-toplevel
    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
