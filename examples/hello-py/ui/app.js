// hello-py's UI: lists and creates items through the extension's own API, which the host page calls for the
// frame (the iframe protocol's apiproxy): the frame holds no credential.
(function () {
  'use strict';
  var $ = function (id) { return document.getElementById(id); };
  var host = AlgaExtension.connect();

  function call(route, init) {
    return host.api(route, init).then(function (res) {
      var body = res.text() ? res.json() : null;
      if (!res.ok) throw new Error((body && body.error) || 'HTTP ' + res.status);
      return body;
    });
  }

  function showError(error) {
    $('error').textContent = String(error.message || error);
  }

  function render(items) {
    var list = $('items');
    list.textContent = '';
    items.forEach(function (item) {
      var li = document.createElement('li');
      li.textContent = item.text;
      li.dataset.id = item.id;
      list.appendChild(li);
    });
    list.dataset.count = String(items.length);
  }

  function refresh() {
    return call('/items').then(function (body) { render(body.items); });
  }

  function add() {
    call('/items', { method: 'POST', json: { text: $('text').value } })
      .then(function () { $('text').value = ''; $('error').textContent = ''; return refresh(); })
      .catch(showError);
  }

  $('add-button').addEventListener('click', add);
  $('text').addEventListener('keydown', function (event) {
    if (event.key === 'Enter') add();
  });

  $('ping').addEventListener('click', function () {
    call('/fetch', { method: 'POST', json: { url: 'https://httpbin.org/get' } })
      .then(function (body) { $('service').textContent = 'HTTP ' + body.status; })
      .catch(function (error) { $('service').textContent = String(error.message || error); });
  });

  host.ready.then(function () {
    host.autoResize();
    return Promise.all([
      refresh(),
      call('/secret').then(function (body) {
        $('secret').textContent = 'secret ' + body.key + ': ' + (body.present ? body.length + ' characters' : 'not set');
      }),
    ]);
  }).then(function () {
    document.body.dataset.state = 'ready';
  }).catch(showError);
})();
