// hello-js: a to-do list kept in the host's `storage`, a secret, an allowlisted service. TypeScript, compiled
// by esbuild to one ES module and componentized by componentize-js against the `alga:extension/runner` world.
//
// The same API as examples/hello-py (JSON in and out; the guest sees `http.url` as path + "?" + query):
//   GET  /items           -> 200 {items: [{id, text}, ...]}  (oldest first)
//   POST /items {text}    -> 201 {id, text}; 400 {error: "bad_input"} without a non-empty text
//   GET  /secret          -> 200 {key: "api_key", present, length}  (never the value)
//   POST /fetch {url}     -> 200 {status, body} (the first 500 characters) from http.fetch; 502 {error} when
//                            the host refuses ("not-allowed": the host is not on EXT_EGRESS_ALLOWLIST)
//   anything else         -> 404 {error: "not_found"}
import { logInfo, logWarn } from 'alga:extension/logging';
import { get as getSecret } from 'alga:extension/secrets';
import { listEntries, put } from 'alga:extension/storage';
import { fetch as hostFetch } from 'alga:extension/http';

interface Header {
  name: string;
  value: string;
}
interface ExecuteRequest {
  http: { method: string; url: string; headers: Header[]; body?: Uint8Array };
}
interface ExecuteResponse {
  status: number;
  headers: Header[];
  body?: Uint8Array;
}
interface Item {
  id: string;
  text: string;
}

const NAMESPACE = 'items';
const SECRET_KEY = 'api_key';
const MAX_TEXT = 200;
const MAX_BODY_PREVIEW = 500;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function json(status: number, value: unknown): ExecuteResponse {
  return {
    status,
    headers: [{ name: 'content-type', value: 'application/json' }],
    body: encoder.encode(JSON.stringify(value)),
  };
}

/** The WIT error variant of a failed host call (componentize-js throws it with a `payload`). */
function hostError(error: unknown): string | null {
  if (error && typeof error === 'object' && 'payload' in error) return String((error as { payload: unknown }).payload);
  return null;
}

function readBody(request: ExecuteRequest): Record<string, unknown> {
  const body = request.http.body;
  if (!body || body.length === 0) return {};
  try {
    const value: unknown = JSON.parse(decoder.decode(body));
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function listItems(): ExecuteResponse {
  try {
    const items: Item[] = listEntries(NAMESPACE, undefined)
      .map((entry) => ({ id: entry.key, text: decoder.decode(entry.value) }))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return json(200, { items });
  } catch (error) {
    const code = hostError(error);
    if (code === null) throw error;
    return json(502, { error: code });
  }
}

function createItem(request: ExecuteRequest): ExecuteResponse {
  const text = readBody(request).text;
  if (typeof text !== 'string' || !text.trim() || text.length > MAX_TEXT) {
    return json(400, { error: 'bad_input', message: `text: 1 to ${MAX_TEXT} characters` });
  }
  // Sorts by creation time; the random tail keeps two items of the same millisecond apart.
  const id = `${String(Date.now()).padStart(15, '0')}-${Math.random().toString(16).slice(2, 8)}`;
  try {
    put({ namespace: NAMESPACE, key: id, value: encoder.encode(text.trim()), revision: undefined });
  } catch (error) {
    const code = hostError(error);
    if (code === null) throw error;
    return json(502, { error: code });
  }
  logInfo(`created item ${id}`);
  return json(201, { id, text: text.trim() });
}

function secret(): ExecuteResponse {
  try {
    return json(200, { key: SECRET_KEY, present: true, length: getSecret(SECRET_KEY).length });
  } catch (error) {
    const code = hostError(error);
    if (code === null) throw error;
    return json(200, { key: SECRET_KEY, present: false, error: code, length: 0 });
  }
}

function fetchService(request: ExecuteRequest): ExecuteResponse {
  const url = readBody(request).url;
  if (typeof url !== 'string' || !/^https?:\/\//.test(url)) {
    return json(400, { error: 'bad_input', message: 'url: an http(s) URL' });
  }
  try {
    const answer = hostFetch({ method: 'GET', url, headers: [{ name: 'accept', value: 'application/json' }] });
    const body = answer.body ? decoder.decode(answer.body) : '';
    return json(200, { status: answer.status, body: body.slice(0, MAX_BODY_PREVIEW) });
  } catch (error) {
    const code = hostError(error);
    if (code === null) throw error;
    logWarn(`fetch ${url}: ${code}`);
    return json(502, { error: code });
  }
}

export function handler(request: ExecuteRequest): ExecuteResponse {
  const path = request.http.url.split('?', 1)[0];
  const route = `${request.http.method.toUpperCase()} ${path}`;
  switch (route) {
    case 'GET /items':
      return listItems();
    case 'POST /items':
      return createItem(request);
    case 'GET /secret':
      return secret();
    case 'POST /fetch':
      return fetchService(request);
    default:
      return json(404, { error: 'not_found', path });
  }
}
