// The official TypeScript MCP client against a memory-mcp server with bearer tokens.
// usage: node client.mjs URL MODE [TOKEN]; MODE is header | provider | provider-without-token | none.
// Prints one JSON line: whether the client connected, the tools it saw or the error it got, and every URL
// it requested (so the test can tell whether it went looking for an authorization server).
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, mode, token] = process.argv.slice(2);
const requested = [];
const recordingFetch = (input, init) => {
  requested.push(String(input instanceof Request ? input.url : input));
  return fetch(input, init);
};

function provider(withToken) {
  return {
    get redirectUrl() { return "http://127.0.0.1:9/callback"; },
    get clientMetadata() { return { client_name: "harden-test", redirect_uris: ["http://127.0.0.1:9/callback"] }; },
    clientInformation() { return undefined; },
    saveClientInformation() {},
    tokens() { return withToken ? { access_token: token, token_type: "Bearer" } : undefined; },
    saveTokens() {},
    redirectToAuthorization() { throw new Error("redirected to an authorization server"); },
    saveCodeVerifier() {},
    codeVerifier() { return "verifier"; },
  };
}

const options = { fetch: recordingFetch };
if (mode === "header") options.requestInit = { headers: { Authorization: `Bearer ${token}` } };
if (mode === "provider") options.authProvider = provider(true);
if (mode === "provider-without-token") options.authProvider = provider(false);

const client = new Client({ name: "harden-test", version: "1.0.0" });
const result = { mode, requested };
try {
  await client.connect(new StreamableHTTPClientTransport(new URL(url), options));
  const tools = await client.listTools();
  result.tools = tools.tools.map((tool) => tool.name).sort();
  const listed = await client.callTool({ name: "list", arguments: {} });
  result.listed = !listed.isError;
  await client.close();
} catch (error) {
  result.error = `${error?.constructor?.name}: ${error?.message}`;
  result.code = error?.code;
}
console.log(JSON.stringify(result));
