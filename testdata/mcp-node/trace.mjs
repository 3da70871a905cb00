// One tools/call over Streamable HTTP with the official TypeScript SDK
// client, carrying W3C trace context in params._meta as the OpenTelemetry
// semantic conventions for MCP say: cmd/hall's TestTracingCollector checks
// the span the Hall exports for it. Prints one JSON line: the result's _meta.
//
//   MCP_URL=http://127.0.0.1:PORT/mcp MCP_TOKEN=… TRACEPARENT=00-…-…-01 TEXT=… node trace.mjs
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const env = process.env;
const transport = new StreamableHTTPClientTransport(new URL(env.MCP_URL), {
  requestInit: { headers: { Authorization: `Bearer ${env.MCP_TOKEN}` } },
});
const client = new Client({ name: "hall-node-trace", version: "0.0.0" });
await client.connect(transport);
const res = await client.callTool({
  name: "doc_summarize",
  arguments: { text: env.TEXT, sentences: 1 },
  _meta: { correlation_id: "node-traced", traceparent: env.TRACEPARENT, tracestate: "client=node" },
});
console.log(JSON.stringify({ isError: !!res.isError, meta: res._meta }));
await client.close();
