"""runner_trio."""
