"""The built-in MCP endpoint at ``/mcp``: the official MCP server's tools over the API."""
