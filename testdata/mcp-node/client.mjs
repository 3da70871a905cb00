// Drives `hall mcp` (stdio) or `hall serve`'s /mcp (Streamable HTTP) with
// the official TypeScript SDK client: list the tools, call one, see a
// denial and the evidence ids, cancel a slow call after its first progress
// notification. Prints one JSON line of what it saw; cmd/hall's
// TestMCPNodeClient checks it and the receipts.
//
//   MODE=stdio HALL_BIN=… HALL_DIR=… HALL_TENANT=… node client.mjs
//   MODE=http MCP_URL=http://127.0.0.1:PORT/mcp MCP_TOKEN=… node client.mjs
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const env = process.env;
const mode = env.MODE;
let transport;
if (mode === "stdio") {
  transport = new StdioClientTransport({
    command: env.HALL_BIN,
    args: ["mcp", "--tenant", env.HALL_TENANT],
    cwd: env.HALL_DIR,
    env: { PATH: env.PATH ?? "", HOME: env.HOME ?? "" },
    stderr: "inherit",
  });
} else if (mode === "http") {
  transport = new StreamableHTTPClientTransport(new URL(env.MCP_URL), {
    requestInit: { headers: { Authorization: `Bearer ${env.MCP_TOKEN}` } },
  });
} else {
  throw new Error(`MODE must be stdio or http, not ${mode}`);
}

const client = new Client({ name: "hall-node-test", version: "0.0.0" });
await client.connect(transport);
const out = { mode };

const { tools } = await client.listTools();
out.tools = tools.map((t) => t.name).sort();
const summarize = tools.find((t) => t.name === "doc_summarize");
out.summarize = summarize && { title: summarize.title, description: summarize.description, readOnly: summarize.annotations?.readOnlyHint };

const allowed = await client.callTool({
  name: "doc_summarize",
  arguments: { text: "The Hall governs workers. Every dispatch is decided before it runs. Nothing runs without evidence.", sentences: 1 },
  _meta: { correlation_id: `node-allowed-${mode}` },
});
out.allowed = { isError: !!allowed.isError, meta: allowed._meta, structured: allowed.structuredContent, text: allowed.content?.[0]?.text };

const denied = await client.callTool({ name: env.DENIED_TOOL, arguments: { input: "x" } });
out.denied = { isError: !!denied.isError, meta: denied._meta, text: denied.content?.[0]?.text };

// Cancel a call of a worker that never returns once it reports progress.
const ac = new AbortController();
let progress = 0;
try {
  await client.callTool(
    { name: "test_slow", arguments: { input: "x" }, _meta: { correlation_id: `node-cancel-${mode}` } },
    undefined,
    {
      signal: ac.signal,
      timeout: 60000,
      onprogress: () => {
        progress++;
        ac.abort("the test cancels the call");
      },
    },
  );
  out.cancelled = false;
} catch (err) {
  out.cancelled = ac.signal.aborted;
  out.cancelError = String(err);
}
out.progress = progress;

console.log(JSON.stringify(out));
// Stay connected until the test has seen the cancelled call's receipt
// (closing at once could abort the notifications/cancelled request still
// in flight): it closes our standard input.
process.stdin.resume();
await new Promise((resolve) => process.stdin.on("end", resolve));
await client.close();
