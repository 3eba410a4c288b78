"""Diagnostics around a compute: observers, progress bars, profiles, explanations, pictures."""
