"""The renum-db MCP server (`renum-db mcp`): one tenant's data for its AI agents, read-only.

Needs the `mcp` extra (`pip install 'renum-db[mcp]'`: the `mcp` SDK and `pglast`). See
docs/mcp.md for registering it with an MCP client, the tools and the security layers.
"""

from __future__ import annotations

__all__: list[str] = []
