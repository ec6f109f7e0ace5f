"""The control socket: a running orchestrator serves its snapshot, events and commands to
clients in other processes (attach, status, shell commands), over newline-delimited JSON."""
