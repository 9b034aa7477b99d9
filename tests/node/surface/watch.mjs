// Drives memory-mcp with the official TypeScript MCP client: lists and reads the memory resources, completes
// a template argument, gets a prompt, calls `changes`, subscribes to the URIs given, then prints every
// resource notification it receives as one JSON line until stdin closes.
//
// Usage: node watch.mjs '{"url": "http://127.0.0.1:PORT/mcp", "token": "...", "subscribe": ["memory://..."]}'
//    or: node watch.mjs '{"command": "/path/python", "args": ["-m", "memory_mcp.cli", "stdio"], "env": {...}, ...}'
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  ResourceListChangedNotificationSchema,
  ResourceUpdatedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";

const config = JSON.parse(process.argv[2]);
const print = (kind, data) => process.stdout.write(JSON.stringify({ kind, ...data }) + "\n");

const transport = config.url
  ? new StreamableHTTPClientTransport(new URL(config.url), {
      requestInit: config.token ? { headers: { Authorization: `Bearer ${config.token}` } } : {},
    })
  : new StdioClientTransport({ command: config.command, args: config.args, env: config.env, stderr: "inherit" });
const client = new Client({ name: "memory-mcp-node-test", version: "1.0.0" });
client.setNotificationHandler(ResourceListChangedNotificationSchema, () => print("list_changed", {}));
client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => print("updated", { uri: n.params.uri }));
// Transport trouble (a GET stream refused or dropped) is reported, not fatal: the test shows it if it waits in vain.
client.onerror = (error) => print("transport_error", { message: String(error?.message ?? error) });

try {
  await client.connect(transport);
  const resources = (await client.listResources()).resources;
  const templates = (await client.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate);
  const read = resources.length ? (await client.readResource({ uri: resources[0].uri })).contents[0] : null;
  const completion = await client.complete({
    ref: { type: "ref/resource", uri: "memory://{scope}/{name}" },
    argument: { name: "scope", value: "" },
  });
  const prompt = await client.getPrompt({ name: "session-start", arguments: { scope: config.scope ?? "global" } });
  const changes = await client.callTool({ name: "changes", arguments: {} });
  for (const uri of config.subscribe ?? []) {
    await client.subscribeResource({ uri });
  }
  print("ready", {
    protocol: transport.protocolVersion ?? null,
    capabilities: client.getServerCapabilities(),
    instructions: client.getInstructions() ?? null,
    resources: resources.map((r) => ({ uri: r.uri, name: r.name, meta: r._meta ?? null })),
    templates,
    read: read && { uri: read.uri, text: read.text, meta: read._meta ?? null },
    scopes: completion.completion.values,
    prompt: prompt.messages[0].content.text,
    changes: changes.structuredContent,
  });
} catch (error) {
  print("error", { message: String(error?.message ?? error) });
  process.exit(1);
}

process.stdin.resume();
process.stdin.on("end", async () => {
  await client.close();
  process.exit(0);
});
