"""Shared ground: errors, settings, labels, files, names, progress, shell quoting."""
