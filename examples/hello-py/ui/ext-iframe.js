/*
 * The extension side of the iframe bridge: copy this file into your bundle's ui/ directory and load it with
 * <script src="ext-iframe.js"></script> before your own code (a classic script on purpose: module scripts in
 * an opaque-origin sandboxed frame would need CORS from the runner).
 *
 *   var host = AlgaExtension.connect({ onTheme: function (tokens) {} });
 *   host.ready.then(function (boot) { boot.session.tenant_id; boot.navigation.path; });
 *   host.autoResize();                                   // keep the iframe as tall as the content
 *   host.api('/items', { method: 'POST', json: { a: 1 } }).then(function (res) { return res.json(); });
 *   host.navigate('/settings');                           // tell the host which in-app route is showing
 *
 * Theme tokens (CSS custom properties such as --alga-color-primary) are applied to :root automatically.
 *
 * Security: the host's origin and this embedding's channel id arrive in the URL fragment (#alga-parent=…&
 * alga-channel=…). Messages are posted to that origin only, and only messages from the parent window, from that
 * origin and carrying the channel id are read. Where the browser exposes location.ancestorOrigins, the declared
 * parent must be the real one.
 */
(function (global) {
  'use strict';

  var PROTOCOL_VERSION = '1';
  var DEFAULT_TIMEOUT_MS = 30000;
  var TOKEN_NAME_RE = /^--[A-Za-z0-9-]{1,64}$/;
  var TOKEN_VALUE_BAD_RE = /[;{}<>\\]/;

  function readFragment() {
    var params = new URLSearchParams(global.location.hash.replace(/^#/, ''));
    return { channel: params.get('alga-channel'), parent: params.get('alga-parent') };
  }

  function isEnvelope(data) {
    return Boolean(data) && typeof data === 'object' && data.alga === true && data.version === PROTOCOL_VERSION &&
      typeof data.type === 'string';
  }

  function applyTheme(tokens) {
    var root = global.document.documentElement;
    Object.keys(tokens || {}).forEach(function (name) {
      var value = tokens[name];
      if (TOKEN_NAME_RE.test(name) && typeof value === 'string' && value.length <= 256 && !TOKEN_VALUE_BAD_RE.test(value)) {
        root.style.setProperty(name, value);
      }
    });
  }

  function toBase64(bytes) {
    var binary = '';
    for (var i = 0; i < bytes.length; i += 0x8000) {
      binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return global.btoa(binary);
  }

  function fromBase64(text) {
    var binary = global.atob(text || '');
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
    return bytes;
  }

  function ApiResponse(answer) {
    this.status = answer.status;
    this.ok = answer.status >= 200 && answer.status < 300;
    this.contentType = answer.content_type || null;
    this.body = fromBase64(answer.body);
  }
  ApiResponse.prototype.text = function () {
    return new TextDecoder().decode(this.body);
  };
  ApiResponse.prototype.json = function () {
    return JSON.parse(this.text());
  };

  function connect(options) {
    options = options || {};
    var fragment = readFragment();
    var ancestors = global.location.ancestorOrigins;
    var parentOrigin = fragment.parent || (ancestors && ancestors.length ? ancestors[0] : null);
    if (!parentOrigin || global.parent === global) {
      throw new Error('alga: not embedded by a host page (no alga-parent in the URL fragment)');
    }
    if (ancestors && ancestors.length && ancestors[0] !== parentOrigin) {
      throw new Error('alga: the declared host origin is not the embedding page');
    }
    var channel = fragment.channel;
    var pending = {};
    var sequence = 0;
    var lastHeight = null;
    var bootstrap = null;
    var resolveReady;
    var ready = new Promise(function (resolve) { resolveReady = resolve; });

    function post(type, payload, requestId) {
      var message = { alga: true, version: PROTOCOL_VERSION, type: type, payload: payload || {} };
      if (requestId !== undefined) message.request_id = requestId;
      if (channel) message.channel = channel;
      global.parent.postMessage(message, parentOrigin);
    }

    global.addEventListener('message', function (event) {
      if (event.source !== global.parent || event.origin !== parentOrigin) return;
      var message = event.data;
      if (!isEnvelope(message) || (channel && message.channel !== channel)) return;
      var payload = message.payload || {};
      if (message.type === 'bootstrap') {
        bootstrap = payload;
        applyTheme(payload.theme_tokens);
        if (options.onBootstrap) options.onBootstrap(payload);
        resolveReady(payload);
      } else if (message.type === 'theme_tokens') {
        var tokens = payload.theme_tokens || payload;
        applyTheme(tokens);
        if (bootstrap) bootstrap.theme_tokens = tokens;
        if (options.onTheme) options.onTheme(tokens);
      } else if (message.type === 'apiproxy_response') {
        var call = pending[message.request_id];
        if (!call) return;
        delete pending[message.request_id];
        global.clearTimeout(call.timer);
        if (payload.error && payload.status === undefined) {
          call.reject(new Error('alga: ' + payload.error + (payload.message ? ': ' + payload.message : '')));
        } else {
          call.resolve(new ApiResponse(payload));
        }
      }
    });

    var client = {
      ready: ready,
      get bootstrap() { return bootstrap; },
      resize: function (height) {
        var value = Math.ceil(Number(height));
        if (!isFinite(value) || value === lastHeight) return;
        lastHeight = value;
        post('resize', { height: value });
      },
      autoResize: function (element) {
        var target = element || global.document.body;
        var measure = function () { client.resize(target.getBoundingClientRect().height); };
        measure();
        if (global.ResizeObserver) new global.ResizeObserver(measure).observe(target);
      },
      navigate: function (path) {
        post('navigate', { path: String(path) });
      },
      // api(route, {method, json, body (string | Uint8Array), contentType, timeoutMs}) -> Promise<ApiResponse>;
      // an HTTP error status still resolves (check .ok); only bridge-level failures reject.
      api: function (route, init) {
        init = init || {};
        var payload = { route: route };
        if (init.method) payload.method = init.method;
        var body = init.json !== undefined ? JSON.stringify(init.json) : init.body;
        if (body !== undefined && body !== null) {
          payload.body = toBase64(typeof body === 'string' ? new TextEncoder().encode(body) : body);
          if (init.contentType) payload.content_type = init.contentType;
        }
        sequence += 1;
        var requestId = 'req-' + sequence + '-' + Date.now().toString(36);
        return new Promise(function (resolve, reject) {
          var timer = global.setTimeout(function () {
            delete pending[requestId];
            reject(new Error('alga: api call timed out'));
          }, init.timeoutMs || DEFAULT_TIMEOUT_MS);
          pending[requestId] = { resolve: resolve, reject: reject, timer: timer };
          post('apiproxy', payload, requestId);
        });
      },
    };
    post('ready', {});
    return client;
  }

  global.AlgaExtension = { connect: connect, applyTheme: applyTheme, PROTOCOL_VERSION: PROTOCOL_VERSION };
})(window);
