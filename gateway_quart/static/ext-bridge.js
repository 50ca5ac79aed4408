// The host side of the extension iframe bridge, and the URL of an extension's UI on the runner.
//
// Envelope, both ways: {alga: true, version: "1", type, request_id?, payload, channel?}; anything else is ignored.
//   host -> iframe: bootstrap {session, theme_tokens, navigation: {path}}, theme_tokens {theme_tokens},
//                   theme {...tokens}, apiproxy_response {status, body (base64)} | {error, status?, body?}
//   iframe -> host: ready {}, resize {height} (clamped to 100..4000 px), navigate {path},
//                   apiproxy {route, method?, body? (base64), content_type?}
// This is the reference iframe SDK's protocol (docs/ui.md): its envelopes carry no channel, and it reads the host's
// origin from `?parentOrigin=` in its URL; our own author helper (ext-iframe.js) adds a channel id.
//
// Who may talk to whom (the reasoning behind every check below):
//
// * Isolated mode (the production one): the UI is served from its install's own origin and framed with
//   ISOLATED_SANDBOX ("allow-same-origin" included). Its messages then carry that real origin, which no other
//   document can claim, so `event.source` plus `event.origin` identify the extension's document and a message
//   without a channel (the reference SDK's) is accepted; a channel, when present, must still be this one. The
//   host posts to that origin only.
//
// * Shared mode: the iframe is sandboxed with "allow-scripts" and without "allow-same-origin", so its document has
//   an opaque origin: in the host, `event.origin` of its messages is the string "null", which any other sandboxed
//   document (or a data: URL) also has. The origin alone therefore proves nothing, and every message must also
//   come from this iframe's own window (`event.source === iframe.contentWindow`). When a caller opts into
//   "allow-same-origin", the iframe keeps the runner's origin and the host accepts exactly that origin instead.
//   "allow-same-origin" together with a runner on the host's own origin is refused: the frame could then reach
//   into the host page and remove its own sandbox.
//
// * The host can only address an opaque-origin document with targetOrigin "*" (an opaque origin has no name to
//   target). "*" means: whatever document is in that frame at delivery time gets the message. The frame can
//   navigate itself (a link the user clicks, a script) to any site, which then sits in the same sandboxed
//   window. Two rules keep that harmless:
//     1. host messages never carry a credential: `session` is identity (tenant, user id and name), the session
//        cookie stays HttpOnly on the gateway's origin, and apiproxy answers are the extension's own API responses;
//     2. a per-embedding random channel id, handed to the extension's document in the URL fragment (never sent
//        to a server, not visible to a document the frame navigates to), must be echoed in every message the
//        host acts on. A foreign document in the frame cannot drive the extension's API, cannot make the host
//        resize or navigate, and gets no bootstrap, since the host only answers messages that carry the channel.
//   With "allow-same-origin" the host posts to the runner's origin only, never "*".
//
// * apiproxy calls go to this host's own origin, under `/api/ext/{extensionId}/` only (the path is resolved and
//   checked after URL normalization), with the gateway session cookie (same-origin credentials); the gateway then
//   applies the install, endpoint, RBAC and rate-limit checks as for any other call.

export const PROTOCOL_VERSION = '1';
export const DEFAULT_SANDBOX = 'allow-scripts';
export const ISOLATED_SANDBOX = 'allow-scripts allow-same-origin allow-forms allow-popups';
export const PARENT_ORIGIN_QUERY = 'parentOrigin';
export const CONTENT_HASH_QUERY = '_h';
// What a body is labelled with when the iframe names no content_type: our helper's default is JSON; the
// reference SDK's host sends every body as bytes.
export const DEFAULT_CONTENT_TYPE = 'application/json';
export const REFERENCE_CONTENT_TYPE = 'application/octet-stream';
export const MIN_HEIGHT = 100;
export const MAX_HEIGHT = 4000;
export const MAX_INFLIGHT_API_CALLS = 16;
export const MAX_ROUTE_LENGTH = 2048;
export const MAX_API_BODY_BYTES = 10 * 1024 * 1024;
export const CHANNEL_PARAM = 'alga-channel';
export const PARENT_PARAM = 'alga-parent';

const API_METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);
const BODYLESS_METHODS = new Set(['GET']);
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const HASH_RE = /^sha256:[0-9a-f]{64}$/;
const TOKEN_RE = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$/;
const CONTENT_TYPE_RE = /^[\w.+-]+\/[\w.+-]+(?:; ?charset=[\w-]+)?$/i;
const CONTROL_RE = /[\u0000-\u001f\u007f]/;
const TOKEN_NAME_RE = /^--[A-Za-z0-9-]{1,64}$/;
const TOKEN_VALUE_BAD_RE = /[;{}<>\\]/;

/** True for a well-formed bridge envelope of this protocol version. */
export function isEnvelope(data) {
  return Boolean(data) && typeof data === 'object' && data.alga === true && data.version === PROTOCOL_VERSION &&
    typeof data.type === 'string' && (data.payload === undefined || (typeof data.payload === 'object' && data.payload !== null));
}

/** A height in pixels clamped to MIN_HEIGHT..MAX_HEIGHT, or null when `value` is not a finite number. */
export function clampHeight(value) {
  const number = typeof value === 'number' ? value : Number.NaN;
  if (!Number.isFinite(number)) return null;
  return Math.min(MAX_HEIGHT, Math.max(MIN_HEIGHT, Math.round(number)));
}

/** A fresh random channel id (128 bits, hex). */
export function newChannel() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** True for an in-app route: "/..." without "//", backslashes or control characters, at most 1024 chars. */
export function isNavigationPath(path) {
  return typeof path === 'string' && path.length <= 1024 && path.startsWith('/') && !path.startsWith('//') &&
    !path.includes('\\') && !CONTROL_RE.test(path);
}

/**
 * The URL of an extension's UI on the runner, signed by the gateway (`token`, see docs/ui.md):
 * `${runnerBase}/ext-ui/{ext}/{hash}/~t/{token}/{entry}?path=…&extensionId=…#alga-channel=…&alga-parent=…`.
 * The token is a path segment so that the page's relative asset URLs carry it too.
 */
export function buildExtUiSrc(extensionId, contentHash, path, options = {}) {
  const { runnerBase, token, entry = 'index.html', channel, parentOrigin } = options;
  if (!ID_RE.test(extensionId)) throw new TypeError(`invalid extension id ${JSON.stringify(extensionId)}`);
  if (!HASH_RE.test(contentHash)) throw new TypeError('contentHash must be sha256:<64 lower-case hex>');
  if (token != null && !TOKEN_RE.test(token)) throw new TypeError('token must be one URL path segment');
  const base = new URL(runnerBase);
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new TypeError('runnerBase must be http(s)');
  const file = String(entry).split('/').filter(Boolean).map(encodeURIComponent).join('/');
  const signed = token != null ? `~t/${token}/` : '';
  const url = new URL(`${base.href.replace(/\/+$/, '')}/ext-ui/${extensionId}/${contentHash}/${signed}${file}`);
  url.searchParams.set('path', isNavigationPath(path) ? path : '/');
  url.searchParams.set('extensionId', extensionId);
  const fragment = new URLSearchParams();
  if (channel) fragment.set(CHANNEL_PARAM, channel);
  if (parentOrigin) fragment.set(PARENT_PARAM, new URL(parentOrigin).origin);
  const hash = fragment.toString();
  if (hash) url.hash = hash;
  return url.toString();
}

/**
 * The URL of an extension's UI on its install's own origin (isolated mode), as the reference host builds it:
 * `${uiOrigin}/{entry}?parentOrigin=…&_h={hash}&path=…#alga-channel=…&alga-parent=…` (the entry `index.html` is `/`).
 */
export function buildIsolatedUiSrc(uiOrigin, contentHash, path, options = {}) {
  const { parentOrigin, entry = 'index.html', channel } = options;
  if (!HASH_RE.test(contentHash)) throw new TypeError('contentHash must be sha256:<64 lower-case hex>');
  const origin = new URL(uiOrigin);
  if ((origin.protocol !== 'http:' && origin.protocol !== 'https:') || origin.origin !== uiOrigin.replace(/\/+$/, '')) {
    throw new TypeError('uiOrigin must be an http(s) origin');
  }
  const file = String(entry).split('/').filter(Boolean).map(encodeURIComponent).join('/');
  const url = new URL(file === 'index.html' ? '/' : `/${file}`, origin);
  const parent = new URL(parentOrigin).origin;
  url.searchParams.set(PARENT_ORIGIN_QUERY, parent);
  url.searchParams.set(CONTENT_HASH_QUERY, contentHash);
  url.searchParams.set('path', isNavigationPath(path) ? path : '/');
  const fragment = new URLSearchParams();
  if (channel) fragment.set(CHANNEL_PARAM, channel);
  fragment.set(PARENT_PARAM, parent);
  url.hash = fragment.toString();
  return url.toString();
}

/** Set theme tokens (CSS custom properties such as `--alga-color-primary`) on an element; bad ones are skipped. */
export function applyThemeTokens(element, tokens) {
  for (const [name, value] of Object.entries(tokens || {})) {
    if (TOKEN_NAME_RE.test(name) && typeof value === 'string' && value.length <= 256 && !TOKEN_VALUE_BAD_RE.test(value)) {
      element.style.setProperty(name, value);
    }
  }
}

export function bytesToBase64(bytes) {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

export function base64ToBytes(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/**
 * Turn an apiproxy payload into a fetch of this origin's `${apiBase}${route}`, or throw (the message says why).
 * `apiBase` is `/api/ext/{extensionId}`; `origin` defaults to this page's origin.
 */
export function resolveApiRequest(apiBase, payload, origin = window.location.origin, defaultContentType = DEFAULT_CONTENT_TYPE) {
  const route = payload && payload.route;
  if (typeof route !== 'string' || route.length === 0 || route.length > MAX_ROUTE_LENGTH) throw new Error('route must be a non-empty string');
  if (!route.startsWith('/') || route.startsWith('//') || route.includes('\\') || route.includes('#') || CONTROL_RE.test(route)) {
    throw new Error('route must be an absolute path under the extension API');
  }
  for (const segment of route.split('?', 1)[0].split('/')) {
    let decoded;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      throw new Error('route is not valid percent-encoding');
    }
    if (decoded === '.' || decoded === '..' || decoded.includes('/') || decoded.includes('\\')) throw new Error('route must not contain dot segments or encoded separators');
  }
  const url = new URL(apiBase + route, origin);
  const prefix = `${apiBase}/`;
  if (url.origin !== new URL(origin).origin || !(url.pathname === apiBase || url.pathname.startsWith(prefix))) {
    throw new Error('route leaves the extension API');
  }
  const hasBody = payload.body !== undefined && payload.body !== null;
  const method = String(payload.method || (hasBody ? 'POST' : 'GET')).toUpperCase();
  if (!API_METHODS.has(method)) throw new Error(`method ${method} is not allowed`);
  const headers = { accept: 'application/json, */*;q=0.5' };
  let body;
  if (hasBody) {
    if (BODYLESS_METHODS.has(method)) throw new Error(`${method} cannot carry a body`);
    if (typeof payload.body !== 'string') throw new Error('body must be base64 text');
    try {
      body = base64ToBytes(payload.body);
    } catch {
      throw new Error('body is not valid base64');
    }
    if (body.length > MAX_API_BODY_BYTES) throw new Error('body is too large');
    const contentType = payload.content_type === undefined ? defaultContentType : payload.content_type;
    if (typeof contentType !== 'string' || !CONTENT_TYPE_RE.test(contentType)) throw new Error('invalid content_type');
    headers['content-type'] = contentType;
  }
  return { url: url.toString(), route, method, headers, body };
}

/**
 * Connect the bridge to `iframe` (call it before setting `iframe.src`). Returns a controller:
 * `{ready, stats, setThemeTokens(tokens), dispose()}`.
 *
 * Options: runnerOrigin (required), extensionId (required), channel (required unless requireChannel is false),
 * session, themeTokens, navigation {path}, apiBase, sandbox, fetch, and callbacks onReady(), onResize(height),
 * onNavigate(path), onApiCall(method, route), onIgnored(reason, event).
 */
export function bootstrapIframe(iframe, options) {
  const {
    runnerOrigin,
    extensionId,
    channel = null,
    requireChannel = true,
    session = {},
    themeTokens = {},
    sandbox = DEFAULT_SANDBOX,
    fetch: fetchImpl = window.fetch.bind(window),
    onReady,
    onResize,
    onNavigate,
    onApiCall,
    onIgnored,
  } = options;
  if (!ID_RE.test(extensionId || '')) throw new TypeError('extensionId is required');
  if (requireChannel && !channel) throw new TypeError('a channel is required (see newChannel)');
  const apiBase = options.apiBase || `/api/ext/${extensionId}`;
  const expectedOrigin = new URL(runnerOrigin).origin;
  iframe.setAttribute('sandbox', sandbox);
  const sameOrigin = iframe.sandbox.contains('allow-same-origin');
  if (sameOrigin && expectedOrigin === window.location.origin) {
    throw new Error('allow-same-origin with a runner on the host origin would let the extension lift its sandbox');
  }
  // See the header comment: an opaque-origin frame says "null" and can only be addressed as "*"; a frame on its own
  // origin is addressed by it, and only there can a message without a channel be trusted.
  const acceptedOrigin = sameOrigin ? expectedOrigin : 'null';
  const targetOrigin = sameOrigin ? expectedOrigin : '*';
  const channelOptional = sameOrigin || !requireChannel;

  let theme = { ...themeTokens };
  let navigation = { path: isNavigationPath(options.navigation && options.navigation.path) ? options.navigation.path : '/' };
  let ready = false;
  let inflight = 0;
  const stats = { accepted: 0, ignored: 0, apiCalls: 0 };

  function post(type, payload, requestId) {
    const target = iframe.contentWindow;
    if (!target) return;
    const message = { alga: true, version: PROTOCOL_VERSION, type, payload };
    if (requestId !== undefined) message.request_id = requestId;
    if (channel) message.channel = channel;
    target.postMessage(message, targetOrigin);
  }

  function ignore(reason, event) {
    stats.ignored += 1;
    if (onIgnored) onIgnored(reason, event);
  }

  async function apiproxy(message) {
    const requestId = message.request_id;
    const reply = (payload) => post('apiproxy_response', payload, requestId);
    const contentType = message.channel === undefined ? REFERENCE_CONTENT_TYPE : DEFAULT_CONTENT_TYPE;
    let request;
    try {
      request = resolveApiRequest(apiBase, message.payload, window.location.origin, contentType);
    } catch (error) {
      reply({ error: 'bad_request', message: error.message });
      return;
    }
    if (inflight >= MAX_INFLIGHT_API_CALLS) {
      reply({ error: 'too_many_requests' });
      return;
    }
    inflight += 1;
    stats.apiCalls += 1;
    if (onApiCall) onApiCall(request.method, request.route);
    try {
      const response = await fetchImpl(request.url, {
        method: request.method,
        headers: request.headers,
        body: request.body,
        credentials: 'same-origin',
        redirect: 'error',
        cache: 'no-store',
      });
      const bytes = new Uint8Array(await response.arrayBuffer());
      const answer = { status: response.status, content_type: response.headers.get('content-type'), body: bytesToBase64(bytes) };
      // The reference SDK rejects on `error` and shows it; our helper resolves on `status` (check .ok).
      if (!response.ok) answer.error = `Proxy error ${response.status}: ${new TextDecoder().decode(bytes)}`;
      reply(answer);
    } catch (error) {
      reply({ error: 'network_error', message: String(error && error.message) });
    } finally {
      inflight -= 1;
    }
  }

  function onMessage(event) {
    if (event.source !== iframe.contentWindow) return ignore('source', event);
    if (event.origin !== acceptedOrigin) return ignore('origin', event);
    const message = event.data;
    if (!isEnvelope(message)) return ignore('envelope', event);
    if (message.channel === undefined ? !channelOptional : message.channel !== channel) {
      return ignore('channel', event);
    }
    const payload = message.payload || {};
    switch (message.type) {
      case 'ready':
        ready = true;
        stats.accepted += 1;
        post('bootstrap', { session, theme_tokens: theme, navigation });
        post('theme', { ...theme }); // as the reference host does on ready
        if (onReady) onReady();
        return undefined;
      case 'resize': {
        const height = clampHeight(payload.height);
        if (height === null) return ignore('payload', event);
        stats.accepted += 1;
        iframe.style.height = `${height}px`;
        if (onResize) onResize(height);
        return undefined;
      }
      case 'navigate':
        if (!isNavigationPath(payload.path)) return ignore('payload', event);
        stats.accepted += 1;
        navigation = { path: payload.path };
        if (onNavigate) onNavigate(payload.path);
        return undefined;
      case 'apiproxy':
        if (typeof message.request_id !== 'string' || !message.request_id || message.request_id.length > 128) {
          return ignore('payload', event);
        }
        stats.accepted += 1;
        apiproxy(message);
        return undefined;
      default:
        return ignore('type', event);
    }
  }

  window.addEventListener('message', onMessage);
  return {
    get ready() {
      return ready;
    },
    get stats() {
      return { ...stats };
    },
    setThemeTokens(tokens) {
      theme = { ...tokens };
      post('theme_tokens', { theme_tokens: theme });
      post('theme', { ...theme });
    },
    dispose() {
      window.removeEventListener('message', onMessage);
    },
  };
}
