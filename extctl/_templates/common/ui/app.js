// The extension's UI: waits for the host's bootstrap, then calls GET /hello through the host (apiproxy).
(function () {
  'use strict';
  var answer = document.getElementById('answer');
  var host = AlgaExtension.connect();

  function call() {
    answer.dataset.state = 'pending';
    return host.api('/hello?name=ui').then(function (res) {
      answer.textContent = res.text();
      answer.dataset.state = res.ok ? 'ok' : 'error';
    }).catch(function (error) {
      answer.textContent = String(error.message || error);
      answer.dataset.state = 'error';
    });
  }

  host.ready.then(function () {
    host.autoResize();
    call();
  });
  document.getElementById('again').addEventListener('click', call);
})();
