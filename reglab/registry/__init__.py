"""One registry: its stages, working folder, container, HTTP client and day-two operations."""
