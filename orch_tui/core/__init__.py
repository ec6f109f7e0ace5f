"""The orchestration core: everything that runs jobs, free of any UI toolkit."""
