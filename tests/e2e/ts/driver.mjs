// Drives the official MCP TypeScript SDK client against the kit, for tests/e2e/test_ts_sdk_flow.py.
//
// The SDK does the OAuth work itself: Client + StreamableHTTPClientTransport with default options
// (so it opens the listen-mode GET /mcp after connecting) and an in-memory OAuthClientProvider:
// 401 -> RFC 9728 PRM -> RFC 8414 metadata -> RFC 7591 registration -> PKCE authorization URL ->
// code exchange -> refresh -> re-authorization. Only the person's part is outside: the driver prints
// the authorization URL, the test signs in and consents headlessly and writes the redirect back.
//
// Protocol: one JSON object per line.
//   stdin  {"op": ...}              a command (see OPS below)
//   stdout {"event": "authorize", "url": ...}   the SDK wants the person's browser at url;
//   stdin  {"redirect": url} | {"abandon": true} the redirect to our redirect URI, or give up
//   stdout {"ok": true, "result": ..., "http": [...]} | {"ok": false, "error": {...}, "http": [...]}
// "http" lists the requests the SDK made for the command (method, path, status, challenge, grant
// type, scopes), never a token.
//
// Usage: node driver.mjs '{"mcpUrl": ..., "redirectUri": ..., "clientName": ...}'

import { createHash, randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { auth, UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

const config = JSON.parse(process.argv[2]);
// Nothing here may hang the suite: every wait has a bound, and so has the whole process.
const LISTEN_WAIT_MS = 5000;
const WATCHDOG_MS = 120000;
setTimeout(() => fail('driver watchdog: no exit after ' + WATCHDOG_MS + ' ms'), WATCHDOG_MS).unref();

function emit(message) {
  process.stdout.write(JSON.stringify(message) + '\n');
}

function fail(message) {
  process.stderr.write(message + '\n');
  process.exit(2);
}

function sha256(value) {
  return value ? createHash('sha256').update(value).digest('hex').slice(0, 16) : null;
}

// ---------------------------------------------------------------- HTTP observation
// Every request the SDK makes goes through the global fetch; record what the test asserts on.
let httpLog = [];
let listenWaiters = [];
const realFetch = globalThis.fetch;

function bodyText(body) {
  if (body === undefined || body === null) return '';
  return body instanceof URLSearchParams ? body.toString() : String(body);
}

globalThis.fetch = async (input, init = {}) => {
  const url = new URL(input instanceof Request ? input.url : String(input));
  const method = (init.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
  const entry = { method, path: url.pathname };
  const body = bodyText(init.body);
  if (url.pathname === '/token' || url.pathname === '/revoke') {
    const form = new URLSearchParams(body);
    entry.grant_type = form.get('grant_type');
    entry.token_type_hint = form.get('token_type_hint');
    entry.resource = form.get('resource');
  } else if (url.pathname === '/register' && body) {
    entry.requested_scope = JSON.parse(body).scope ?? null;
  } else if (url.pathname === '/mcp') {
    const headers = new Headers(init.headers);
    entry.bearer = headers.has('authorization');
    if (body) entry.rpc = JSON.parse(body).method;
    else entry.accept = headers.get('accept');
  }
  httpLog.push(entry);
  const response = await realFetch(input, init);
  entry.status = response.status;
  entry.www_authenticate = response.headers.get('www-authenticate');
  if (url.pathname === '/mcp') entry.allow = response.headers.get('allow');
  if (method === 'GET' && url.pathname === '/mcp') {
    listenWaiters.forEach((resolve) => resolve(entry));
    listenWaiters = [];
  }
  const json = (response.headers.get('content-type') ?? '').startsWith('application/json');
  if (json && (url.pathname === '/token' || url.pathname === '/register')) {
    const answer = await response.clone().json();
    entry.error = answer.error;
    entry.scope = answer.scope;
  }
  return response;
};

// ---------------------------------------------------------------- OAuthClientProvider (in memory)
class MemoryProvider {
  constructor(redirectUri, clientName) {
    this._redirectUri = redirectUri;
    this._clientName = clientName;
    this._state = undefined;
    this.pendingAuthorization = undefined;
    this.saved = { client: undefined, tokens: undefined, verifier: undefined, discovery: undefined };
  }

  get redirectUrl() {
    return this._redirectUri;
  }

  get clientMetadata() {
    return {
      client_name: this._clientName,
      redirect_uris: [this._redirectUri],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none'
    };
  }

  state() {
    this._state = randomBytes(16).toString('base64url');
    return this._state;
  }

  clientInformation() {
    return this.saved.client;
  }

  saveClientInformation(info) {
    this.saved.client = info;
  }

  tokens() {
    return this.saved.tokens;
  }

  saveTokens(tokens) {
    this.saved.tokens = tokens;
  }

  redirectToAuthorization(url) {
    this.pendingAuthorization = { url: url.toString(), state: this._state };
  }

  saveCodeVerifier(verifier) {
    this.saved.verifier = verifier;
  }

  codeVerifier() {
    if (!this.saved.verifier) throw new Error('no code verifier saved');
    return this.saved.verifier;
  }

  saveDiscoveryState(state) {
    this.saved.discovery = state;
  }

  discoveryState() {
    return this.saved.discovery;
  }

  invalidateCredentials(scope) {
    if (scope === 'all' || scope === 'client') this.saved.client = undefined;
    if (scope === 'all' || scope === 'tokens') this.saved.tokens = undefined;
    if (scope === 'all' || scope === 'verifier') this.saved.verifier = undefined;
    if (scope === 'all' || scope === 'discovery') this.saved.discovery = undefined;
  }
}

// ---------------------------------------------------------------- the person's part, over stdio
const lines = createInterface({ input: process.stdin });
const incoming = [];
let lineWaiter;
lines.on('line', (line) => {
  if (lineWaiter) {
    const resolve = lineWaiter;
    lineWaiter = undefined;
    resolve(line);
  } else {
    incoming.push(line);
  }
});
lines.on('close', () => fail('stdin closed'));

function nextLine() {
  if (incoming.length) return Promise.resolve(incoming.shift());
  return new Promise((resolve) => {
    lineWaiter = resolve;
  });
}

const provider = new MemoryProvider(config.redirectUri, config.clientName);
const mcpUrl = new URL(config.mcpUrl);
let client;
let transport;
let lastListen = null;
const authorizations = [];

/** The browser round trip for the authorization URL the SDK produced, then the SDK's code exchange. */
async function completeAuthorization() {
  const pending = provider.pendingAuthorization;
  if (!pending) throw new Error('the SDK asked for authorization without an authorization URL');
  provider.pendingAuthorization = undefined;
  emit({ event: 'authorize', url: pending.url });
  const answer = JSON.parse(await nextLine());
  if (answer.abandon) throw new Error('authorization abandoned by the person');
  const redirect = new URL(answer.redirect);
  const params = redirect.searchParams;
  const issuer = provider.saved.discovery?.authorizationServerMetadata?.issuer;
  // RFC 9207 section 2.4: the iss in the response must equal the issuer of the metadata used.
  if (!issuer || params.get('iss') !== issuer) {
    throw new Error(`iss mismatch: ${params.get('iss')} != ${issuer}`);
  }
  // RFC 6749 section 10.12: the state must be the one this client sent.
  if (params.get('state') !== pending.state) throw new Error('state mismatch');
  if (params.get('error')) throw new Error(`authorization error: ${params.get('error')}`);
  authorizations.push({ url: pending.url, iss: params.get('iss') });
  await transport.finishAuth(params.get('code'));
}

async function connect() {
  if (client) return;
  transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
  const candidate = new Client({ name: 'kit-e2e-ts', version: '1.0.0' });
  const listen = new Promise((resolve) => listenWaiters.push(resolve));
  try {
    await candidate.connect(transport);
  } catch (error) {
    listenWaiters = [];
    await candidate.close().catch(() => undefined);
    throw error;
  }
  client = candidate;
  // The transport opens GET /mcp (listen mode) after initialization without awaiting it; wait for
  // the answer, bounded, so the test can assert what the server did with it.
  const timeout = new Promise((resolve) => setTimeout(() => resolve(null), LISTEN_WAIT_MS).unref());
  lastListen = await Promise.race([listen, timeout]);
}

async function disconnect() {
  const current = client;
  client = undefined;
  await current?.close();
}

/** Run fn with a connected client; when the SDK needs the person (UnauthorizedError), do that part. */
async function withAuthorization(fn) {
  for (let round = 0; ; round++) {
    try {
      await connect();
      return await fn(client);
    } catch (error) {
      if (!(error instanceof UnauthorizedError) || round >= 2) throw error;
      await completeAuthorization();
      await disconnect();
    }
  }
}

async function revoke() {
  // RFC 7009 at the revocation_endpoint of the discovered metadata; the SDK has no helper for it.
  const metadata = provider.saved.discovery.authorizationServerMetadata;
  const form = new URLSearchParams({
    token: provider.saved.tokens.refresh_token,
    token_type_hint: 'refresh_token',
    client_id: provider.saved.client.client_id
  });
  const response = await fetch(metadata.revocation_endpoint, { method: 'POST', body: form });
  return { status: response.status, endpoint: metadata.revocation_endpoint };
}

function snapshot() {
  const tokens = provider.saved.tokens;
  return {
    client_id: provider.saved.client?.client_id ?? null,
    scope: tokens?.scope ?? null,
    refresh_token_sha256: sha256(tokens?.refresh_token),
    access_token_sha256: sha256(tokens?.access_token),
    authorizations,
    listen: lastListen
  };
}

const OPS = {
  // The SDK's auth() with an explicit scope, as an app does for "connect read-only".
  authorize: async ({ scope }) => {
    transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
    const result = await auth(provider, { serverUrl: mcpUrl, scope });
    if (result === 'REDIRECT') await completeAuthorization();
    return result;
  },
  connect: () => withAuthorization(async () => null),
  list_tools: () => withAuthorization(async (c) => (await c.listTools()).tools.map((t) => t.name)),
  call: ({ name, arguments: args }) =>
    withAuthorization(async (c) => {
      const result = await c.callTool({ name, arguments: args ?? {} });
      return { isError: result.isError ?? false, structuredContent: result.structuredContent ?? null };
    }),
  // The stored access token stops working (as after its expiry); the refresh token stays.
  expire_access_token: async () => {
    provider.saved.tokens = { ...provider.saved.tokens, access_token: 'expired.' + provider.saved.tokens.access_token };
    return null;
  },
  // What an app does when the SDK gives up on a 403: forget the tokens that proved insufficient.
  drop_tokens: async () => {
    provider.invalidateCredentials('tokens');
    return null;
  },
  revoke,
  state: async () => snapshot(),
  close: async () => {
    await disconnect();
    return null;
  }
};

for (;;) {
  const command = JSON.parse(await nextLine());
  httpLog = [];
  const op = OPS[command.op];
  try {
    if (!op) throw new Error(`unknown op ${command.op}`);
    const result = await op(command);
    emit({ ok: true, result, http: httpLog, state: snapshot() });
  } catch (error) {
    const detail = { name: error?.constructor?.name, code: error?.code ?? null, message: String(error?.message ?? error) };
    emit({ ok: false, error: detail, http: httpLog, state: snapshot() });
  }
  if (command.op === 'close') process.exit(0);
}
