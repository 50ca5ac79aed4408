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

// Journal panel: lists this extension's recorded invocations (GET {journal}?extension=…, session cookie), shows
// one as a timeline of its host calls (function, arguments and result summarised, time since guest start and
// duration), and replays it on a runner (POST {journal}/{entry}/replay). Entry contents come from guests: text only.
(function () {
  const SUMMARY_CHARS = 120;
  const body = document.body;
  const extensionId = body.dataset.extensionId;
  const journalPath = body.dataset.journalPath;
  const loadButton = document.getElementById("journal-load");
  const statusEl = document.getElementById("journal-status");
  const entriesBody = document.querySelector("#journal-entries tbody");
  const entryBox = document.getElementById("journal-entry");
  const entryIdEl = document.getElementById("journal-entry-id");
  const timeline = document.getElementById("journal-timeline");
  const replayButton = document.getElementById("journal-replay");
  const replayResult = document.getElementById("journal-replay-result");
  if (!journalPath || !loadButton) return;
  let current = null;

  function summary(value) {
    let text;
    try {
      text = JSON.stringify(value);
    } catch (_err) {
      text = String(value);
    }
    if (text === undefined) text = "";
    return text.length > SUMMARY_CHARS ? text.slice(0, SUMMARY_CHARS) + "…" : text;
  }

  function micros(us) {
    const n = Number(us);
    if (!Number.isFinite(n)) return "?";
    return n >= 1000 ? (n / 1000).toFixed(1) + " ms" : n + " µs";
  }

  async function call(method, url) {
    const response = await fetch(url, {
      method: method, credentials: "same-origin",
      headers: method === "POST" ? { "content-type": "application/json" } : {},
      body: method === "POST" ? "{}" : undefined,
    });
    let data = null;
    try {
      data = await response.json();
    } catch (_err) {
      data = null;
    }
    if (!response.ok) {
      const code = data && data.error ? data.error : "HTTP " + response.status;
      throw new Error(code);
    }
    return data;
  }

  function cell(row, className, text) {
    const td = document.createElement("td");
    td.className = className;
    td.textContent = text == null ? "" : String(text);
    row.appendChild(td);
  }

  function showTimeline(doc) {
    timeline.replaceChildren();
    (doc.calls || []).forEach(function (c) {
      const li = document.createElement("li");
      li.className = "call";
      li.dataset.fn = String(c.fn);
      const at = document.createElement("span");
      at.className = "at";
      at.textContent = "+" + micros(c.at_us) + " (" + micros(c.dur_us) + ") ";
      li.appendChild(at);
      li.appendChild(document.createTextNode("#" + c.i + " " + c.fn + "(" + summary(c.args) + ") → " + summary(c.result)));
      timeline.appendChild(li);
    });
    if (!timeline.children.length) {
      const li = document.createElement("li");
      li.textContent = "no host calls";
      timeline.appendChild(li);
    }
  }

  async function open(entryId) {
    current = entryId;
    entryIdEl.textContent = entryId;
    replayResult.hidden = true;
    entryBox.hidden = false;
    statusEl.textContent = "loading entry…";
    try {
      const doc = await call("GET", journalPath + "/" + encodeURIComponent(entryId));
      if (current !== entryId) return;
      showTimeline(doc);
      statusEl.textContent = (doc.calls || []).length + " host calls · outcome " + doc.outcome;
    } catch (err) {
      statusEl.textContent = "entry: " + err.message;
    }
  }

  async function load() {
    statusEl.textContent = "loading…";
    try {
      const data = await call("GET", journalPath + "?extension=" + encodeURIComponent(extensionId) + "&limit=100");
      entriesBody.replaceChildren();
      (data.entries || []).forEach(function (e) {
        const row = document.createElement("tr");
        row.className = "entry" + (e.outcome === "ok" ? "" : " outcome-failed");
        row.dataset.entryId = e.id;
        cell(row, "time", e.recorded_at);
        cell(row, "outcome", e.outcome);
        cell(row, "status", e.status);
        cell(row, "request", e.request_id);
        cell(row, "id", e.id);
        row.addEventListener("click", function () { open(e.id); });
        entriesBody.appendChild(row);
      });
      statusEl.textContent = (data.entries || []).length + " entries";
    } catch (err) {
      statusEl.textContent = "journal: " + err.message;
    }
  }

  async function replay() {
    if (!current) return;
    const entryId = current;
    replayResult.hidden = false;
    replayResult.textContent = "replaying…";
    delete replayResult.dataset.verdict;
    try {
      const report = await call("POST", journalPath + "/" + encodeURIComponent(entryId) + "/replay");
      if (current !== entryId) return;
      replayResult.dataset.verdict = report.verdict;
      const lines = [report.verdict + " (" + (report.calls_replayed || 0) + " host calls replayed)"];
      if (report.divergence) {
        lines.push("first divergence at call " + report.divergence.index + ": " + (report.divergence.reason || ""));
        lines.push("  expected: " + summary(report.divergence.expected));
        lines.push("  actual:   " + summary(report.divergence.actual));
      }
      (report.response_diff || []).forEach(function (line) { lines.push("  " + line); });
      replayResult.textContent = lines.join("\n");
    } catch (err) {
      replayResult.textContent = "replay: " + err.message;
    }
  }

  loadButton.addEventListener("click", load);
  replayButton.addEventListener("click", replay);
})();
