// The host page of one installed extension: reads its config from the JSON data block, embeds the extension's
// UI from the runner in a sandboxed iframe and connects the bridge. State is mirrored into data-* attributes of
// #ext-host so the page can be observed (and tested) from outside.
import { applyThemeTokens, bootstrapIframe, buildExtUiSrc, newChannel } from './ext-bridge.js';

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

const counters = { ignored: 0, apiCalls: 0 };
const channel = newChannel();
const bridge = bootstrapIframe(iframe, {
  runnerOrigin: new URL(config.runnerBase).origin,
  extensionId: config.extensionId,
  apiBase: config.apiBase,
  channel,
  session: config.session,
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

iframe.src = buildExtUiSrc(config.extensionId, config.contentHash, config.navigationPath, {
  runnerBase: config.runnerBase,
  tenant: config.tenantId,
  entry: config.entry,
  channel,
  parentOrigin: window.location.origin,
});
host.appendChild(iframe);
