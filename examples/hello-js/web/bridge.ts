// The frame's side of the host page's postMessage protocol (the reference iframe SDK's envelope
// `{alga: true, version: "1", type, request_id?, payload}`, see docs/ui.md), as a typed ES module.
//
// Where the host is: the URL fragment's `alga-parent` (what this gateway's host page puts there, in both UI
// modes), else the `?parentOrigin=` query (the reference host's way). The fragment's `alga-channel`, when
// present, goes on every message and must be on every answer (the shared UI mode needs it).

const VERSION = '1';
const TIMEOUT_MS = 15_000;

export interface Bootstrap {
  session?: { tenant_id?: string; user_id?: string };
  theme_tokens?: Record<string, string>;
  navigation?: { path?: string };
}

export interface ProxyAnswer {
  status: number;
  ok: boolean;
  text: string;
}

interface Envelope {
  alga: true;
  version: string;
  type: string;
  request_id?: string;
  channel?: string;
  payload: Record<string, unknown>;
}

function isEnvelope(data: unknown): data is Envelope {
  const m = data as Envelope | null;
  return !!m && typeof m === 'object' && m.alga === true && m.version === VERSION && typeof m.type === 'string';
}

function toBase64(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

function fromBase64(text: string): Uint8Array {
  return Uint8Array.from(atob(text || ''), (ch) => ch.charCodeAt(0));
}

export function applyTheme(tokens: Record<string, string> | undefined): void {
  for (const [name, value] of Object.entries(tokens || {})) {
    if (/^--[A-Za-z0-9-]{1,64}$/.test(name) && typeof value === 'string' && !/[;{}<>\\]/.test(value)) {
      document.documentElement.style.setProperty(name, value);
    }
  }
}

export class HostBridge {
  readonly parentOrigin: string;
  readonly ready: Promise<Bootstrap>;
  private readonly channel: string | null;
  private readonly pending = new Map<string, { resolve: (a: ProxyAnswer) => void; reject: (e: Error) => void }>();
  private sequence = 0;

  constructor() {
    const fragment = new URLSearchParams(window.location.hash.replace(/^#/, ''));
    const query = new URLSearchParams(window.location.search);
    const parent = fragment.get('alga-parent') || query.get('parentOrigin');
    if (!parent || window.parent === window) throw new Error('not embedded by a host page');
    this.parentOrigin = parent;
    this.channel = fragment.get('alga-channel');
    let resolveReady: (boot: Bootstrap) => void = () => undefined;
    this.ready = new Promise((resolve) => { resolveReady = resolve; });
    window.addEventListener('message', (event: MessageEvent) => {
      if (event.source !== window.parent || event.origin !== this.parentOrigin) return;
      const message = event.data;
      if (!isEnvelope(message) || (this.channel && message.channel !== this.channel)) return;
      const payload = message.payload || {};
      if (message.type === 'bootstrap') {
        applyTheme(payload.theme_tokens as Record<string, string>);
        resolveReady(payload as Bootstrap);
      } else if (message.type === 'theme') {
        applyTheme(payload as Record<string, string>);
      } else if (message.type === 'apiproxy_response' && message.request_id) {
        const call = this.pending.get(message.request_id);
        if (!call) return;
        this.pending.delete(message.request_id);
        if (typeof payload.status !== 'number') {
          call.reject(new Error(String(payload.error || 'the host refused the call')));
        } else {
          const text = new TextDecoder().decode(fromBase64(String(payload.body || '')));
          call.resolve({ status: payload.status, ok: payload.status >= 200 && payload.status < 300, text });
        }
      }
    });
    this.post('ready', {});
  }

  private post(type: string, payload: Record<string, unknown>, requestId?: string): void {
    const message: Envelope = { alga: true, version: VERSION, type, payload };
    if (requestId !== undefined) message.request_id = requestId;
    if (this.channel) message.channel = this.channel;
    window.parent.postMessage(message, this.parentOrigin);
  }

  resize(height: number): void {
    this.post('resize', { height: Math.ceil(height) });
  }

  /** Calls the extension's own API through the host (`apiproxy`); the frame never holds a credential. */
  call(route: string, init: { method?: string; json?: unknown } = {}): Promise<ProxyAnswer> {
    this.sequence += 1;
    const requestId = `req-${this.sequence}-${Date.now().toString(36)}`;
    const payload: Record<string, unknown> = { route, method: init.method || 'GET' };
    if (init.json !== undefined) {
      payload.body = toBase64(new TextEncoder().encode(JSON.stringify(init.json)));
      payload.content_type = 'application/json';
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        reject(new Error('the host did not answer in time'));
      }, TIMEOUT_MS);
      this.pending.set(requestId, {
        resolve: (answer) => { clearTimeout(timer); resolve(answer); },
        reject: (error) => { clearTimeout(timer); reject(error); },
      });
      this.post('apiproxy', payload, requestId);
    });
  }

  /** {@link call} with a JSON answer; a non-2xx answer rejects with the API's `error` code. */
  async callJson<T>(route: string, init: { method?: string; json?: unknown } = {}): Promise<T> {
    const answer = await this.call(route, init);
    const body = answer.text ? JSON.parse(answer.text) : null;
    if (!answer.ok) throw new Error((body && body.error) || `HTTP ${answer.status}`);
    return body as T;
  }
}
