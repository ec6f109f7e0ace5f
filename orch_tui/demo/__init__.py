"""The built-in demo: a synthetic workspace and a worker that behaves like a transcoder."""
