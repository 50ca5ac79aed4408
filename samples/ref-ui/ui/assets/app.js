// The sample's UI, written the way a reference UI is: ES modules, the iframe SDK, JSON handler calls.
import { IframeBridge, callHandlerJson } from './alga-iframe-sdk.js';

const $ = (id) => document.getElementById(id);
const bridge = new IframeBridge();

$('origin').textContent = window.location.origin;
$('parent').textContent = bridge.parentOrigin;

async function show(id, call) {
  const element = $(id);
  element.dataset.state = 'pending';
  try {
    const answer = await call();
    element.textContent = JSON.stringify(answer);
    element.dataset.state = 'ok';
  } catch (error) {
    element.textContent = String(error.message || error);
    element.dataset.state = 'error';
  }
}

function callHandlers() {
  return Promise.all([
    show('get-result', () => callHandlerJson(bridge, '/echo?from=module')),
    show('post-result', () => callHandlerJson(bridge, '/echo', { method: 'POST', body: { hello: 'from a module' } })),
  ]);
}

function reportHeight() {
  const height = Math.ceil(document.documentElement.getBoundingClientRect().height);
  document.body.dataset.requestedHeight = String(height);
  bridge.emitResize(height);
}

bridge.on('bootstrap', (payload) => {
  $('route').textContent = (payload.navigation && payload.navigation.path) || '/';
  const session = payload.session || {};
  $('session').textContent = session.token ? 'token received' : 'no token (apiproxy only)';
  document.body.dataset.state = 'bootstrapped';
  callHandlers();
});

$('call-again').addEventListener('click', () => callHandlers());
$('grow').addEventListener('click', () => {
  const more = $('more');
  more.hidden = false;
  for (let i = 0; i < 40; i += 1) more.appendChild(Object.assign(document.createElement('p'), { textContent: `Line ${i + 1}` }));
});

new ResizeObserver(reportHeight).observe(document.documentElement);
bridge.ready();
