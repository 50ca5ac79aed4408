// Debug console: follows /api/ext-debug/stream over a WebSocket (authenticated by the page's session cookie)
// and shows the events in a table. Filters are applied by the server (changing one reconnects, which replays
// the matching recent events); "Pause" holds new events in memory, bounded, until resumed.
// Messages come from extensions: they are only ever inserted as text, never as HTML.
"use strict";

(function () {
  const MAX_ROWS = 2000;
  const MAX_HELD = 5000;
  const RETRY_MIN_MS = 500;
  const RETRY_MAX_MS = 10000;

  const body = document.body;
  const extensionId = body.dataset.extensionId;
  const streamPath = body.dataset.streamPath;
  const tbody = document.querySelector("#events tbody");
  const statusEl = document.getElementById("status");
  const levelEl = document.getElementById("level");
  const streamEl = document.getElementById("stream");
  const requestEl = document.getElementById("request-id");
  const pauseButton = document.getElementById("pause");
  const clearButton = document.getElementById("clear");

  let socket = null;
  let socketUrl = "";
  let retryMs = RETRY_MIN_MS;
  let retryTimer = null;
  let paused = false;
  let held = [];
  let heldOverflow = 0;
  let dropped = 0;

  function streamUrl() {
    const params = new URLSearchParams({ extensionId: extensionId });
    if (levelEl.value) params.set("level", levelEl.value);
    if (streamEl.value) params.set("stream", streamEl.value);
    const requestId = requestEl.value.trim();
    if (requestId) params.set("requestId", requestId);
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + window.location.host + streamPath + "?" + params.toString();
  }

  function setStatus(state, text) {
    statusEl.dataset.state = state;
    let line = text;
    if (dropped) line += " · " + dropped + " dropped";
    if (paused) line += " · " + held.length + " held";
    statusEl.textContent = line;
  }

  function refreshStatus() {
    if (paused) setStatus("paused", "paused");
    else if (socket && socket.readyState === WebSocket.OPEN) setStatus("live", "live");
  }

  function formatTime(ts) {
    const ms = Number(ts);
    if (!Number.isFinite(ms)) return String(ts);
    const date = new Date(ms);
    return date.toLocaleTimeString(undefined, { hour12: false }) + "." + String(date.getMilliseconds()).padStart(3, "0");
  }

  function cell(row, className, text) {
    const td = document.createElement("td");
    td.className = className;
    td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function append(row) {
    const atBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 40;
    tbody.appendChild(row);
    while (tbody.rows.length > MAX_ROWS) tbody.deleteRow(0);
    if (atBottom) window.scrollTo(0, document.body.scrollHeight);
  }

  function addEvent(event) {
    const row = document.createElement("tr");
    row.className = "event level-" + String(event.level);
    if (event.id) row.dataset.id = event.id;
    cell(row, "time", formatTime(event.ts)).title = new Date(Number(event.ts)).toISOString();
    cell(row, "level", event.level);
    cell(row, "stream", event.stream);
    cell(row, "request", event.requestId || "");
    const message = cell(row, "message", event.message);
    if (event.truncated) {
      const mark = document.createElement("span");
      mark.className = "truncated";
      mark.textContent = " … (truncated)";
      message.appendChild(mark);
    }
    append(row);
  }

  function addNotice(text) {
    const row = document.createElement("tr");
    row.className = "notice";
    const td = cell(row, "message", text);
    td.colSpan = 5;
    append(row);
  }

  function handle(item) {
    if (item.type === undefined) {
      if (!paused) {
        addEvent(item);
        return;
      }
      if (held.length >= MAX_HELD) {
        held.shift();
        heldOverflow += 1;
      }
      held.push(item);
      refreshStatus();
    } else if (item.type === "dropped") {
      dropped += item.count;
      addNotice(item.count + " events dropped: the connection could not keep up");
      refreshStatus();
    } else if (item.type === "error") {
      addNotice("stream error: " + item.code);
    }
    // "heartbeat" and unknown types: nothing to show.
  }

  function connect() {
    window.clearTimeout(retryTimer);
    if (socket) {
      const old = socket;
      socket = null;
      old.close(1000);
    }
    socketUrl = streamUrl();
    const ws = new WebSocket(socketUrl);
    socket = ws;
    setStatus("connecting", "connecting…");
    ws.addEventListener("open", function () {
      if (ws !== socket) return;
      retryMs = RETRY_MIN_MS;
      refreshStatus();
      if (!paused) setStatus("live", "live");
    });
    ws.addEventListener("message", function (message) {
      if (ws !== socket) return;
      let item;
      try {
        item = JSON.parse(message.data);
      } catch (_err) {
        return;
      }
      handle(item);
    });
    ws.addEventListener("close", function (event) {
      if (ws !== socket) return;
      socket = null;
      if (event.code >= 4400 && event.code < 4500) {
        setStatus("error", "refused: " + (event.reason || event.code));
        return;
      }
      setStatus("error", "disconnected (" + (event.reason || event.code) + "); retrying in " + retryMs / 1000 + " s");
      retryTimer = window.setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
    });
  }

  function resume() {
    paused = false;
    pauseButton.textContent = "Pause";
    pauseButton.setAttribute("aria-pressed", "false");
    if (heldOverflow) addNotice(heldOverflow + " events not kept while paused");
    const backlog = held;
    held = [];
    heldOverflow = 0;
    backlog.forEach(addEvent);
    if (socket && socket.readyState === WebSocket.OPEN) setStatus("live", "live");
  }

  pauseButton.addEventListener("click", function () {
    if (paused) {
      resume();
      return;
    }
    paused = true;
    pauseButton.textContent = "Resume";
    pauseButton.setAttribute("aria-pressed", "true");
    refreshStatus();
  });

  clearButton.addEventListener("click", function () {
    tbody.replaceChildren();
    held = [];
    heldOverflow = 0;
    dropped = 0;
    refreshStatus();
  });

  function refilter() {
    // Enter in the request id box fires both "change" and "submit": one reconnect is enough.
    if (socket && streamUrl() === socketUrl) return;
    tbody.replaceChildren();
    held = [];
    heldOverflow = 0;
    connect();
  }

  levelEl.addEventListener("change", refilter);
  streamEl.addEventListener("change", refilter);
  requestEl.addEventListener("change", refilter);
  document.getElementById("filters").addEventListener("submit", function (event) {
    event.preventDefault();
    refilter();
  });

  connect();
})();
