// A small iframe SDK speaking the reference iframe SDK's protocol (written here from its documented behaviour,
// see docs/ui.md): an ES module, as a reference UI bundles it.
//
//   const bridge = new IframeBridge();            // parent origin: option, else ?parentOrigin=, else own origin
//   bridge.on('bootstrap', (p) => …);             // {session: {token, expires_at}, theme_tokens, navigation}
//   bridge.ready();                               // tells the host to send bootstrap
//   bridge.emitResize(document.body.scrollHeight);
//   const data = await callHandlerJson(bridge, '/items', { method: 'POST', body: { a: 1 } });
//
// Envelope both ways: {alga: true, version: "1", type, request_id?, payload}; there is no channel id.

const VERSION = '1';
export const PROXY_TIMEOUT_MS = 15_000;
const METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);

function isEnvelope(data) {
  return Boolean(data) && typeof data === 'object' && data.alga === true && data.version === VERSION &&
    typeof data.type === 'string';
}

function toBase64(bytes) {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

function fromBase64(text) {
  const binary = atob(text || '');
  return Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
}

/** Set each theme token (a CSS custom property such as --alga-primary) on the document element. */
export function applyThemeTokens(tokens) {
  for (const [name, value] of Object.entries(tokens || {})) {
    if (name.startsWith('--') && typeof value === 'string') document.documentElement.style.setProperty(name, value);
  }
}

export class IframeBridge {
  constructor(options = {}) {
    const fromQuery = new URLSearchParams(window.location.search).get('parentOrigin');
    this.parentOrigin = options.parentOrigin || fromQuery || window.location.origin;
    this.devAllowWildcard = Boolean(options.devAllowWildcard);
    this.session = null;
    this.listeners = new Map();
    this.pending = new Map();
    window.addEventListener('message', (event) => this.#receive(event));
  }

  /** Listen to one message type from the host; returns a function that stops listening. */
  on(type, listener) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(listener);
    return () => this.listeners.get(type).delete(listener);
  }

  ready() {
    this.#post('ready', {});
  }

  emitResize(height) {
    this.#post('resize', { height: Math.ceil(height) });
  }

  navigate(path) {
    this.#post('navigate', { path });
  }

  /** Call the extension's own handler through the host: bytes in, bytes out (rejects on a proxy error). */
  callProxy(route, body, options = {}) {
    const method = (options.method || 'POST').toUpperCase();
    if (!METHODS.has(method)) return Promise.reject(new Error(`unsupported method ${method}`));
    const requestId = crypto.randomUUID();
    const payload = { route, method };
    if (body !== undefined && body !== null) payload.body = toBase64(body);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        reject(new Error('apiproxy timed out'));
      }, options.timeoutMs || PROXY_TIMEOUT_MS);
      this.pending.set(requestId, { resolve, reject, timer });
      this.#post('apiproxy', payload, requestId);
    });
  }

  #post(type, payload, requestId) {
    const message = { alga: true, version: VERSION, type, payload };
    if (requestId !== undefined) message.request_id = requestId;
    window.parent.postMessage(message, this.devAllowWildcard ? '*' : this.parentOrigin);
  }

  #receive(event) {
    if (!this.devAllowWildcard && event.origin !== this.parentOrigin) return;
    const message = event.data;
    if (!isEnvelope(message)) return;
    const payload = message.payload || {};
    if (message.type === 'bootstrap') {
      this.session = payload.session || null;
      applyThemeTokens(payload.theme_tokens);
    } else if (message.type === 'theme') {
      applyThemeTokens(payload);
    } else if (message.type === 'apiproxy_response') {
      const call = this.pending.get(message.request_id);
      if (!call) return;
      this.pending.delete(message.request_id);
      clearTimeout(call.timer);
      if (payload.error) call.reject(new Error(payload.error));
      else call.resolve(fromBase64(payload.body));
    }
    for (const listener of this.listeners.get(message.type) || []) listener(payload, message);
  }
}

/** JSON over callProxy: GET by default, `body` JSON-encoded (none on GET), the answer parsed (empty -> null). */
export async function callHandlerJson(bridge, path, options = {}) {
  const method = (options.method || 'GET').toUpperCase();
  if (method === 'GET' && options.body !== undefined) throw new Error('a GET request cannot carry a body');
  const body = options.body === undefined ? undefined : new TextEncoder().encode(JSON.stringify(options.body));
  const bytes = await bridge.callProxy(path, body, { method });
  const text = new TextDecoder().decode(bytes);
  return text ? JSON.parse(text) : null;
}
