"""``make bench``: the pieces of ``scripts/bench_mcp.py`` (child programs, layouts, the table)."""
