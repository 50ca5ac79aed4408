// The host page of one installed extension: reads its config from the JSON data block, embeds the extension's
// UI in a sandboxed iframe (on its install's own origin in isolated mode, else on the runner's shared origin)
// and connects the bridge. State is mirrored into data-* attributes of #ext-host so the page can be observed
// (and tested) from outside.
import {
  applyThemeTokens, bootstrapIframe, buildExtUiSrc, buildIsolatedUiSrc, newChannel,
} from './ext-bridge.js';

const config = JSON.parse(document.getElementById('ext-host-config').textContent);
const host = document.getElementById('ext-host');
const bridgeState = document.getElementById('bridge-state');
const navPath = document.getElementById('nav-path');
const themeToggle = document.getElementById('theme-toggle');

let themeName = config.theme;
applyThemeTokens(document.documentElement, config.themes[themeName]);

const iframe = document.createElement('iframe');
iframe.className = 'ext-frame';
iframe.title = `${config.extensionName} (extension)`;
iframe.referrerPolicy = 'no-referrer';

const isolated = config.uiMode === 'isolated';
host.dataset.uiMode = config.uiMode;
const counters = { ignored: 0, apiCalls: 0 };
const channel = newChannel();
const bridge = bootstrapIframe(iframe, {
  runnerOrigin: isolated ? config.uiOrigin : new URL(config.runnerBase).origin,
  extensionId: config.extensionId,
  apiBase: config.apiBase,
  sandbox: config.sandbox,
  channel,
  // The reference's bootstrap session has a token: none crosses into the frame here (docs/ui.md).
  session: { token: null, expires_at: null, ...config.session },
  themeTokens: config.themes[themeName],
  navigation: { path: config.navigationPath },
  onReady() {
    host.dataset.bridge = 'ready';
    bridgeState.value = 'connected';
  },
  onResize(height) {
    host.dataset.height = String(height);
  },
  onNavigate(path) {
    navPath.value = path;
    host.dataset.navPath = path;
    const url = new URL(window.location.href);
    url.searchParams.set('path', path);
    window.history.replaceState(null, '', url);
  },
  onApiCall() {
    counters.apiCalls += 1;
    host.dataset.apiCalls = String(counters.apiCalls);
  },
  onIgnored(reason) {
    counters.ignored += 1;
    host.dataset.ignored = String(counters.ignored);
    host.dataset.lastIgnored = reason;
  },
});

themeToggle.addEventListener('click', () => {
  themeName = themeName === 'light' ? 'dark' : 'light';
  applyThemeTokens(document.documentElement, config.themes[themeName]);
  bridge.setThemeTokens(config.themes[themeName]);
  themeToggle.textContent = themeName === 'light' ? 'Dark theme' : 'Light theme';
  host.dataset.theme = themeName;
});

iframe.src = isolated
  ? buildIsolatedUiSrc(config.uiOrigin, config.contentHash, config.navigationPath, {
    entry: config.entry,
    channel,
    parentOrigin: window.location.origin,
  })
  : buildExtUiSrc(config.extensionId, config.contentHash, config.navigationPath, {
    runnerBase: config.runnerBase,
    token: config.uiToken,
    entry: config.entry,
    channel,
    parentOrigin: window.location.origin,
  });
host.appendChild(iframe);
