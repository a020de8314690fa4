/** Span attributes of Keel's own that the runtime writes and the editor's views read. */

/** The MCP server (the agent's name for it) a tool came from, on that tool's span and its step's recorded output. */
export const MCP_SERVER_ATTRIBUTE = 'keel.mcp.server';
