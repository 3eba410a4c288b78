"""Building graphs: the lazy proxy, keys and argument traversal."""
