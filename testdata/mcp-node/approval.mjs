// Drives a held tools/call through an approval with the official
// TypeScript SDK client over Streamable HTTP: call a tool a policy holds
// (print what the tool error says), wait for a line on standard input
// (the test approves in the console meanwhile), then resume with
// _meta.approval_id alone — no correlation id — and print that result.
// host/server's TestMCPApprovalInConsoleNode runs it.
//
//   MCP_URL=http://127.0.0.1:PORT/mcp MCP_TOKEN=… TOOL=… CORRELATION=… PAYLOAD=… node approval.mjs
import { createInterface } from "node:readline";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const env = process.env;
const transport = new StreamableHTTPClientTransport(new URL(env.MCP_URL), {
  requestInit: { headers: { Authorization: `Bearer ${env.MCP_TOKEN}` } },
});
const client = new Client({ name: "hall-node-approval-test", version: "0.0.0" });
await client.connect(transport);
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const show = (r) => ({ isError: !!r.isError, meta: r._meta, structured: r.structuredContent, text: r.content?.[0]?.text });

const args = { input: env.PAYLOAD };
const held = await client.callTool({ name: env.TOOL, arguments: args, _meta: { correlation_id: env.CORRELATION } });
console.log(JSON.stringify({ held: show(held) }));

// The structured content says how to resume: the same tool and arguments,
// and its _meta.
await lines.next();
const resume = held.structuredContent?.resume ?? {};
const resumed = await client.callTool({ name: resume.tool ?? env.TOOL, arguments: args, _meta: resume._meta ?? {} });
console.log(JSON.stringify({ resumed: show(resumed) }));
await client.close();
process.exit(0);
