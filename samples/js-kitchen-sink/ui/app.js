// The kitchen sink's UI: connects to the host page through the bridge helper (ext-iframe.js), shows what the
// bootstrap said, keeps the frame as tall as its content, and calls the extension's own API through the host.
(function () {
  'use strict';

  function byId(id) {
    return document.getElementById(id);
  }

  var status = byId('status');
  var apiResult = byId('api-result');

  function setState(element, state, text) {
    element.dataset.state = state;
    element.textContent = text;
  }

  var host;
  try {
    host = window.AlgaExtension.connect({
      onTheme: function (tokens) {
        byId('theme').textContent = (tokens['--alga-color-primary'] || '?') + ' (updated)';
      },
    });
  } catch (error) {
    setState(status, 'standalone', 'not embedded: ' + error.message);
    return;
  }
  setState(status, 'ready', 'waiting for the host…');

  function callEcho() {
    setState(apiResult, 'pending', 'POST /echo …');
    return host.api('/echo', { method: 'POST', json: { hello: 'from the iframe' } }).then(function (response) {
      setState(apiResult, response.ok ? 'ok' : 'http-error', response.status + ' ' + response.text());
    }, function (error) {
      setState(apiResult, 'error', error.message);
    });
  }

  host.ready.then(function (boot) {
    setState(status, 'bootstrapped', 'connected to the host');
    byId('tenant').textContent = boot.session.tenant_id;
    byId('user').textContent = boot.session.user_name;
    byId('route').textContent = boot.navigation.path;
    byId('theme').textContent = boot.theme_tokens['--alga-color-primary'] || '?';
    document.body.dataset.requestedHeight = String(Math.ceil(document.body.getBoundingClientRect().height));
    host.autoResize();
    return callEcho();
  });

  byId('call-api').addEventListener('click', callEcho);
  byId('go-settings').addEventListener('click', function () {
    byId('route').textContent = '/settings';
    host.navigate('/settings');
  });
  byId('grow').addEventListener('click', function () {
    byId('more').hidden = false;
  });
  if (window.ResizeObserver) {
    new window.ResizeObserver(function () {
      document.body.dataset.requestedHeight = String(Math.ceil(document.body.getBoundingClientRect().height));
    }).observe(document.body);
  }
})();
