"""Helpers that prepare example data sets for the tarry tutorial."""
