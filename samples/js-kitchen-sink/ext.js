// Kitchen-sink sample extension: one route per capability of the `alga:extension/runner` world, so that tests
// can drive every host interface end to end through `POST /v1/execute`.
//
// WIT -> JS mapping used by componentize-js 0.23 (read from its generated bindings):
//   - imports are ES modules named after the interface (`alga:extension/storage`), functions in camelCase;
//   - `result<T, E>`: the ok value is returned, an err throws a `ComponentError` whose `.payload` is the error
//     (our error types are enums, i.e. kebab-case strings such as "not-found");
//   - `option<T>`: `undefined` for none (null or undefined are accepted when passing one in);
//   - records: plain objects with camelCase fields; `list<u8>`: Uint8Array; `u64`: BigInt; tuples: arrays.
import { getContext } from 'alga:extension/context';
import { get as getSecret, listKeys } from 'alga:extension/secrets';
import { fetch as hostFetch } from 'alga:extension/http';
import {
  get as storageGet,
  put as storagePut,
  delete as storageDelete,
  listEntries,
} from 'alga:extension/storage';
import { logInfo, logWarn, logError } from 'alga:extension/logging';
import { callRoute } from 'alga:extension/ui-proxy';
import { getUser } from 'alga:extension/user';
import { getUser as getUserV2 } from 'alga:extension/user-v2';
import {
  listSchedules,
  getSchedule,
  createSchedule,
  updateSchedule,
  deleteSchedule,
  getEndpoints,
} from 'alga:extension/scheduler';
import { createManualInvoice } from 'alga:extension/invoicing';
import { listClients, getClient } from 'alga:extension/clients';
import { listServices, getService } from 'alga:extension/services';

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const MIB = 1024 * 1024;

// ---------------------------------------------------------------- helpers

function bytesToBase64(bytes) {
  // btoa takes a "binary string"; build it in chunks so large bodies do not overflow the argument list.
  let binary = '';
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + chunk));
  }
  return btoa(binary);
}

function toBytes(value) {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return encoder.encode(value);
  return encoder.encode(JSON.stringify(value));
}

// JSON-friendly copy of a value coming back from the host: none -> null, u64 -> number, bytes -> base64.
function plain(value) {
  if (value === undefined || value === null) return null;
  if (typeof value === 'bigint') {
    return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
  }
  if (value instanceof Uint8Array) return bytesToBase64(value);
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === 'object') {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = plain(v);
    return out;
  }
  return value;
}

function camelKey(key) {
  return key.replace(/[-_]([a-z0-9])/g, (_, c) => c.toUpperCase());
}

// Inputs may be written with snake_case, kebab-case or camelCase keys; the bindings want camelCase.
function camelize(value) {
  if (Array.isArray(value)) return value.map(camelize);
  if (value !== null && typeof value === 'object') {
    const out = {};
    for (const [k, v] of Object.entries(value)) out[camelKey(k)] = camelize(v);
    return out;
  }
  return value;
}

function headerList(headers) {
  if (!headers) return [];
  if (Array.isArray(headers)) {
    return headers.map((h) => (Array.isArray(h) ? { name: h[0], value: h[1] } : h));
  }
  return Object.entries(headers).map(([name, value]) => ({ name, value: String(value) }));
}

function headerObject(list) {
  const out = {};
  for (const { name, value } of list) {
    out[name] = name in out ? `${out[name]}, ${value}` : value;
  }
  return out;
}

function json(status, value, extraHeaders = []) {
  return {
    status,
    headers: [{ name: 'content-type', value: 'application/json' }, ...extraHeaders],
    body: encoder.encode(JSON.stringify(value)),
  };
}

function empty(status) {
  return { status, headers: [], body: undefined };
}

// Runs a host call whose WIT result may be an error: an err comes back as `{error: "<variant>"}`.
function guarded(call) {
  try {
    return call();
  } catch (err) {
    if (err && 'payload' in err) return { error: err.payload };
    throw err;
  }
}

function readJson(req) {
  if (!req.body || req.body.length === 0) return {};
  return JSON.parse(decoder.decode(req.body));
}

function entryJson(entry) {
  return {
    namespace: entry.namespace,
    key: entry.key,
    value: decoder.decode(entry.value),
    revision: plain(entry.revision),
  };
}

function optionalBigInt(value) {
  return value === undefined || value === null ? undefined : BigInt(value);
}

// ---------------------------------------------------------------- routes

function echo(req) {
  const body = req.body;
  return json(
    200,
    {
      method: req.method,
      url: req.url,
      headers: headerObject(req.headers),
      bodyBase64: body === undefined ? null : bytesToBase64(body),
      bodyLength: body === undefined ? 0 : body.length,
    },
    [{ name: 'x-echo', value: '1' }],
  );
}

function context() {
  const c = getContext();
  return json(200, {
    requestId: plain(c.requestId),
    tenantId: c.tenantId,
    extensionId: c.extensionId,
    installId: plain(c.installId),
    versionId: plain(c.versionId),
  });
}

function user(getter) {
  return json(200, guarded(() => plain(getter())));
}

function log(query) {
  const msg = query.get('msg') ?? 'kitchen-sink log';
  logInfo(msg);
  logWarn(msg);
  logError(msg);
  console.log(msg);
  console.error(msg);
  return empty(204);
}

function secret(query) {
  const key = query.get('key') ?? '';
  return json(200, guarded(() => ({ key, value: getSecret(key) })));
}

function outboundHttp(req) {
  const input = readJson(req);
  const result = guarded(() => {
    const res = hostFetch({
      method: input.method ?? 'GET',
      url: input.url,
      headers: headerList(input.headers),
      body: toBytes(input.body),
    });
    return {
      status: res.status,
      headers: headerObject(res.headers),
      bodyText: res.body === undefined ? null : decoder.decode(res.body),
    };
  });
  return json(200, result);
}

function storage(req) {
  const input = camelize(readJson(req));
  const { op, namespace, key } = input;
  switch (op) {
    case 'get':
      return json(200, guarded(() => entryJson(storageGet(namespace, key))));
    case 'put':
      return json(
        200,
        guarded(() =>
          entryJson(
            storagePut({
              namespace,
              key,
              value: encoder.encode(input.value ?? ''),
              revision: optionalBigInt(input.revision),
            }),
          ),
        ),
      );
    case 'delete':
      return json(200, guarded(() => (storageDelete(namespace, key), { deleted: true })));
    case 'list':
      return json(
        200,
        guarded(() => ({ entries: listEntries(namespace, input.cursor ?? undefined).map(entryJson) })),
      );
    default:
      return json(400, { error: 'unknown_op', op: op ?? null });
  }
}

function uiProxy(req) {
  const input = readJson(req);
  const result = guarded(() => {
    const bytes = callRoute(input.route, toBytes(input.payload));
    return { bodyText: decoder.decode(bytes), bodyBase64: bytesToBase64(bytes) };
  });
  return json(200, result);
}

// POST /platform/<op>: body `{input?, scheduleId?, clientId?, serviceId?}` (any key casing).
const PLATFORM = {
  'list-schedules': () => listSchedules(),
  'get-schedule': (b) => getSchedule(b.scheduleId),
  'create-schedule': (b) => createSchedule(b.input),
  'update-schedule': (b) => updateSchedule(b.scheduleId, b.input ?? {}),
  'delete-schedule': (b) => deleteSchedule(b.scheduleId),
  'get-endpoints': () => getEndpoints(),
  'create-manual-invoice': (b) => createManualInvoice(b.input),
  'list-clients': (b) => listClients(b.input ?? {}),
  'get-client': (b) => getClient(b.clientId),
  'list-services': (b) => listServices(b.input ?? {}),
  'get-service': (b) => getService(b.serviceId),
};

function platform(req, op) {
  const call = Object.prototype.hasOwnProperty.call(PLATFORM, op) ? PLATFORM[op] : undefined;
  if (!call) return json(404, { error: 'unknown_platform_op', op });
  const body = camelize(readJson(req));
  return json(200, guarded(() => ({ result: plain(call(body)) })));
}

function spin() {
  let n = 0;
  for (;;) {
    n = (n + 1) | 0;
  }
}

function alloc(query) {
  const mb = Number(query.get('mb') ?? '1');
  const chunks = [];
  let checksum = 0;
  for (let i = 0; i < mb; i++) {
    const chunk = new Uint8Array(MIB);
    chunk.fill((i % 251) + 1); // touch every page so the memory is really committed
    chunks.push(chunk);
    checksum += chunk[MIB - 1];
  }
  return json(200, { allocatedMb: chunks.length, checksum });
}

// POST /journal-demo: every kind of value the invocation journal records, in one invocation. Body
// `{url, key?}`: reads secret `key` (default "api_key"), fetches `url` with it as a bearer token, stores the
// answer under journal/last, reads the wall clock and randomness, logs, and answers all of it (the secret
// too: the journal must never keep it, wherever it appears).
function journalDemo(req) {
  const input = readJson(req);
  const key = input.key ?? 'api_key';
  const secretValue = guarded(() => getSecret(key));
  const token = typeof secretValue === 'string' ? secretValue : '';
  const fetched = guarded(() => {
    const res = hostFetch({
      method: 'GET',
      url: input.url,
      headers: [{ name: 'authorization', value: `Bearer ${token}` }],
      body: undefined,
    });
    return { status: res.status, bodyText: res.body === undefined ? null : decoder.decode(res.body) };
  });
  const now = Date.now();
  const random = Math.random();
  const bytes = new Uint8Array(8);
  crypto.getRandomValues(bytes);
  const stored = guarded(() =>
    entryJson(
      storagePut({
        namespace: 'journal',
        key: 'last',
        value: encoder.encode(JSON.stringify({ fetched, now })),
        revision: undefined,
      }),
    ),
  );
  logInfo(`journal-demo fetched ${fetched.status ?? fetched.error} with ${token}`);
  console.log(`journal-demo at ${now}`);
  return json(200, { secret: secretValue, fetched, stored, now, random, bytes: bytesToBase64(bytes) });
}

// ---------------------------------------------------------------- dispatch

// Routes that read a JSON body answer 400 instead of trapping when the body is not JSON or a field has the
// wrong type for its WIT parameter (the bindings throw a TypeError while lowering the arguments).
function withInput(route) {
  return (req, query) => {
    try {
      return route(req, query);
    } catch (err) {
      return json(400, { error: 'bad_input', message: String(err && err.message) });
    }
  };
}

const ROUTES = {
  'GET /echo': echo,
  'POST /echo': echo,
  'GET /context': () => context(),
  'GET /user': () => user(getUser),
  'GET /user-v2': () => user(getUserV2),
  'GET /log': (_req, q) => log(q),
  'GET /secrets': (_req, q) => secret(q),
  'GET /secrets/list': () => json(200, { keys: listKeys() }),
  'POST /http': withInput(outboundHttp),
  'POST /storage': withInput(storage),
  'POST /ui-proxy': withInput(uiProxy),
  'POST /journal-demo': withInput(journalDemo),
  'GET /spin': () => spin(),
  'GET /alloc': (_req, q) => alloc(q),
  'GET /throw': () => {
    throw new Error('kitchen-sink: deliberate uncaught exception');
  },
};

export function handler(request) {
  const req = request.http;
  const qIndex = req.url.indexOf('?');
  const path = qIndex < 0 ? req.url : req.url.slice(0, qIndex);
  const query = new URLSearchParams(qIndex < 0 ? '' : req.url.slice(qIndex + 1));
  const method = req.method.toUpperCase();

  const route = ROUTES[`${method} ${path}`];
  if (route) return route(req, query);
  if (method === 'POST' && path.startsWith('/platform/')) {
    return withInput(platform)(req, path.slice('/platform/'.length));
  }
  return json(404, { error: 'not_found', method, path });
}
