"""Apps for the process-isolation tests: two Django projects that cannot share a process, and crash helpers."""
