"""``mcp-kit-admin``: the operator's command line for clients, grants and users (README, "Admin CLI")."""
