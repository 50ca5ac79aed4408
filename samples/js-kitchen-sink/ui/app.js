// Tells the host page this iframe is ready, using the bridge envelope `{alga, version, type, payload}`.
// The iframe is sandboxed without same-origin, so the parent's origin is unknown here: "*" is the only target
// that reaches it; the message carries nothing secret.
(function () {
  'use strict';
  var status = document.getElementById('status');

  function post(type, payload) {
    window.parent.postMessage({ alga: true, version: '1', type: type, payload: payload || {} }, '*');
  }

  window.addEventListener('message', function (event) {
    var msg = event.data;
    if (!msg || msg.alga !== true || msg.version !== '1') return;
    if (msg.type === 'bootstrap') {
      status.textContent = 'bootstrapped';
      status.dataset.state = 'bootstrapped';
    }
  });

  post('ready', {});
  status.textContent = 'ready';
  status.dataset.state = 'ready';
})();
