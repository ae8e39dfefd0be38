// vigil's operations dashboard. Every text from the server is set with textContent (never
// as HTML); every action is a POST with the session's CSRF token.
"use strict";

const $ = (sel) => document.querySelector(sel);
let session = null;
let lastStatus = null;

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) {
    const td = document.createElement("td");
    if (c instanceof Node) td.appendChild(c); else td.textContent = c === undefined || c === null ? "" : String(c);
    tr.appendChild(td);
  }
  return tr;
}

async function getJson(path) {
  const res = await fetch(path, { credentials: "same-origin", cache: "no-store" });
  if (res.status === 401) { location.href = "/ui/login"; throw new Error("logged out"); }
  const body = await res.json();
  if (!res.ok) throw new Error(body.error || res.statusText);
  return body;
}

async function post(path, body) {
  const res = await fetch(path, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": session.csrf },
    body: JSON.stringify(body),
  });
  const answer = await res.json().catch(() => ({ error: res.statusText }));
  return { ok: res.ok && answer.ok !== false, answer };
}

// ---- overview -----------------------------------------------------------------------

function renderStatus(st) {
  lastStatus = st;
  const ready = st.ready === true;
  $("#ready").textContent = ready ? "READY" : "NOT READY";
  $("#ready").className = ready ? "ok" : "bad";
  const reasons = $("#not-ready");
  reasons.replaceChildren(...(st.not_ready || []).map((r) => el("li", r)));
  const ts = st.trading_state || "?";
  $("#trading-state").textContent = ts;
  $("#trading-state").className = ts === "active" ? "ok" : ts === "halted" ? "bad" : "warn";
  const head = $("#headline");
  head.textContent = (ready ? "ready" : "not ready") + " · " + ts;
  head.className = "pill " + (ready && ts === "active" ? "ok" : ts === "halted" ? "bad" : "warn");
  $("#market").textContent = st.market_open ? "open" : "closed";
  $("#market-time").textContent = st.market_time ? "market time " + st.market_time : "";
  const cal = st.calendar;
  $("#phase").textContent = !cal ? "" : cal.error ? "calendar: " + cal.error
    : `phase ${cal.phase}${cal.next ? ` · next ${cal.next.phase} at ${new Date(cal.next.at).toLocaleString()}` : ""}` +
      (cal.automation ? "" : " (automation off)");
  refreshFiring();
  const endpoint = (v) => (v.up ? "up" : "DOWN") + " · " + (v.name || "?") +
    (v.latency_ms != null ? " · " + Number(v.latency_ms).toFixed(1) + " ms" : "") +
    (v.error ? " · " + v.error : "");
  $("#data-source").textContent = endpoint(st.data_source || {}) + (st.data_ended ? " · ended" : "");
  $("#data-source").className = st.data_source && st.data_source.up ? "ok" : "bad";
  $("#venue").textContent = endpoint(st.venue || {});
  $("#venue").className = st.venue && st.venue.up ? "ok" : "bad";
  const tbody = $("#agents tbody");
  tbody.replaceChildren(...(st.agents || []).map((a) => row([
    a.agent, a.state,
    a.heartbeat_age_ms != null ? a.heartbeat_age_ms + " ms ago" : "",
    a.backlog != null ? a.backlog : "",
  ])));
  $("#breaches").replaceChildren(...(st.breaches || []).map((b) =>
    el("li", `${b.rule} (${b.level}): ${b.metric} ${b.label || ""} = ${b.value} (threshold ${b.threshold}) since ${b.since}`)));
  if (!(st.breaches || []).length) $("#breaches").replaceChildren(el("li", "none", "muted"));
  $("#updated-at").textContent = st.updated_at || "never";
  const exec = (st.agents || []).find((a) => a.agent === "execution");
  const eq = exec && exec.figures && exec.figures.equity;
  if (eq !== undefined && eq !== null) liveEquity(st.updated_at, Number(eq));
}

let firingAt = 0;
async function refreshFiring() {
  if (Date.now() - firingAt < 5000) return;
  firingAt = Date.now();
  try {
    const view = await getJson("/ui/api/alerts");
    const firing = view.alerts.filter((a) => a.phase === "firing");
    $("#firing").replaceChildren(...firing.map((a) => {
      const li = el("li");
      const link = el("a", `${a.severity} ${a.rule}: ${a.event}`, a.severity === "critical" ? "bad" : "warn");
      link.href = "#alert/" + encodeURIComponent(a.id);
      li.appendChild(link);
      return li;
    }));
    if (!firing.length) $("#firing").replaceChildren(el("li", "none", "ok"));
  } catch (e) {
    $("#firing").replaceChildren(el("li", "cannot read the alerts: " + e.message, "bad"));
  }
}

async function breaker(command) {
  const reason = $("#breaker-reason").value.trim();
  const out = $("#command-result");
  if (!reason) { out.textContent = "Say why (the reason is audited)."; out.className = "result bad"; return; }
  const { ok, answer } = await post("/ui/api/command", { command, reason });
  out.textContent = ok ? answer.outcome : (answer.error || "refused");
  out.className = "result " + (ok ? "ok" : "bad");
  if (ok) {
    const st = await getJson("/ui/api/status");
    renderStatus(st);
  }
}

function connect() {
  const live = $("#live");
  const source = new EventSource("/ui/api/events");
  source.addEventListener("status", (e) => {
    live.textContent = "live";
    live.className = "ok";
    renderStatus(JSON.parse(e.data));
  });
  source.onerror = () => { live.textContent = "reconnecting…"; live.className = "warn"; };
}

// ---- positions and equity -----------------------------------------------------------

const live = { t: [], equity: [] };
let chart = null;

let showingLive = false;
function liveEquity(at, equity) {
  const t = Date.parse(at) / 1000;
  if (!Number.isFinite(t) || !Number.isFinite(equity) || (live.t.length && live.t[live.t.length - 1] >= t)) return;
  live.t.push(t); live.equity.push(equity);
  if (live.t.length > 5000) { live.t.shift(); live.equity.shift(); }
  if (showingLive && !$("#page-positions").hidden) {
    if (chart) chart.setData([live.t, live.equity, drawdown(live.equity)]);
    else drawChart(live.t, live.equity, "live, since this page opened");
  }
}

function drawdown(values) {
  let peak = -Infinity;
  return values.map((v) => { peak = Math.max(peak, v); return peak > 0 ? -100 * (peak - v) / peak : 0; });
}

function drawChart(t, equity, title) {
  const box = $("#equity-chart");
  if (chart) { chart.destroy(); chart = null; }
  box.replaceChildren();
  if (t.length < 2 || typeof uPlot === "undefined") {
    box.appendChild(el("p", "No equity curve yet: it is logged at each close, and followed live while this page is open.", "muted"));
    return;
  }
  const width = Math.max(280, box.clientWidth || 600);
  chart = new uPlot({
    title, width, height: 260,
    series: [{}, { label: "equity", stroke: "#2ea043" }, { label: "drawdown %", stroke: "#f85149", scale: "%" }],
    axes: [{ stroke: "#8a939b" }, { stroke: "#8a939b", size: 80 }, { side: 1, scale: "%", stroke: "#8a939b", size: 50 }],
  }, [t, equity, drawdown(equity)], box);
}

async function loadPositions() {
  const [books, curve] = await Promise.all([
    getJson("/ui/api/positions"),
    getJson("/ui/api/log?event=equity_curve&limit=1"),
  ]);
  const exec = ((lastStatus && lastStatus.agents) || []).find((a) => a.agent === "execution");
  const figures = (exec && exec.figures) || {};
  const account = $("#account");
  account.replaceChildren();
  const kv = el("table");
  for (const k of ["equity", "orders", "filled", "rejected", "cancelled", "open", "fills", "slippage_bps"]) {
    const v = figures[k];
    if (v === undefined || v === null) continue;
    const shown = k === "equity" ? Number(v).toFixed(2) : k === "slippage_bps" ? Number(v).toFixed(2) : v;
    kv.appendChild(row([k.replace("_", " "), shown]));
  }
  account.appendChild(kv);
  if (Array.isArray(figures.ledgers) && figures.ledgers.length) {
    account.appendChild(el("h3", "Per model version"));
    const t = el("table");
    t.appendChild(row(["version", "pnl", "drawdown", "fills"]));
    for (const l of figures.ledgers) t.appendChild(row([l.version, l.pnl, l.drawdown, l.fills]));
    account.appendChild(t);
  }
  const holder = $("#books");
  holder.replaceChildren();
  for (const b of books.books) {
    holder.appendChild(el("h3", `${b.book}: cash ${b.cash ?? "?"} · ${b.fills} fills`));
    const t = el("table");
    t.appendChild(row(["symbol", "quantity", "average price"]));
    for (const p of b.positions) t.appendChild(row([p.symbol, p.quantity, p.average_price]));
    if (!b.positions.length) t.appendChild(row(["flat", "", ""]));
    holder.appendChild(t);
    if (b.ledgers) holder.appendChild(el("pre", JSON.stringify(b.ledgers, null, 1), "muted"));
  }
  if (!books.books.length) holder.appendChild(el("p", "No journaled book yet.", "muted"));
  const line = curve.lines[curve.lines.length - 1];
  if (line && typeof line.data.points === "string" && live.t.length < 2) {
    const day = line.data.session;
    const t = [], eq = [];
    for (const p of line.data.points.split(/[ ,]+/)) {
      const [hm, v] = p.split("=");
      if (!v) continue;
      const ts = Date.parse(`${day}T${hm}:00`) / 1000;
      if (Number.isFinite(ts) && Number.isFinite(Number(v))) { t.push(ts); eq.push(Number(v)); }
    }
    showingLive = false;
    drawChart(t, eq, `session ${day} (New York time)`);
  } else {
    showingLive = true;
    drawChart(live.t, live.equity, "live, since this page opened");
  }
}

// ---- alerts -------------------------------------------------------------------------

async function loadAlerts(focus) {
  const view = await getJson("/ui/api/alerts");
  const tbody = $("#alerts tbody");
  tbody.replaceChildren();
  for (const a of view.alerts) {
    let ackCell;
    if (a.acked) ackCell = el("span", `by ${a.acked.by}`, "muted acked");
    else if (session.role === "operator") {
      ackCell = el("button", "Ack");
      ackCell.dataset.alert = a.id;
      ackCell.className = "ack";
      ackCell.addEventListener("click", async () => {
        const { ok, answer } = await post("/ui/api/alerts/ack", { id: a.id });
        $("#ack-result").textContent = ok ? answer.outcome : (answer.error || "refused");
        $("#ack-result").className = "result " + (ok ? "ok" : "bad");
        ackCell.disabled = ok;
      });
    } else ackCell = el("span", "—", "muted");
    const tr = row([ackCell, a.severity, a.rule, a.event, a.since, a.id]);
    tr.id = "alert-" + a.id;
    if (a.id === focus) tr.className = "warn";
    tbody.appendChild(tr);
  }
  if (!view.alerts.length) tbody.appendChild(row(["", "", "no active alert", "", "", ""]));
  $("#silences").replaceChildren(...view.silences.map((s) =>
    el("li", `${s.id}: ${JSON.stringify(s.matchers)} until ${s.ends} (${s.created_by}: ${s.reason})`)));
  if (focus) { const r = document.getElementById("alert-" + focus); if (r) r.scrollIntoView(); }
}

async function silence(e) {
  e.preventDefault();
  const f = new FormData($("#silence-form"));
  const { ok, answer } = await post("/ui/api/alerts/silence", {
    matchers: { rule: String(f.get("rule")).trim() },
    hours: Number(f.get("hours")),
    reason: String(f.get("reason")).trim(),
  });
  $("#silence-result").textContent = ok ? answer.outcome : (answer.error || "refused");
  $("#silence-result").className = "result " + (ok ? "ok" : "bad");
}

// ---- models and releases ------------------------------------------------------------

function modelReason() {
  const reason = $("#model-reason").value.trim();
  if (!reason) {
    $("#release-result").textContent = "Say why first (the reason is audited).";
    $("#release-result").className = "result bad";
  }
  return reason;
}

async function releaseStep(model, step) {
  const reason = modelReason();
  if (!reason) return;
  const { ok, answer } = await post("/ui/api/command", { command: "model_release", model, step, reason });
  $("#release-result").textContent = ok ? answer.outcome : (answer.error || "refused");
  $("#release-result").className = "result " + (ok ? "ok" : "bad");
  if (ok) await loadModels();
}

// Promote in the registry, then ask the running session to switch (blue-green), as
// `vigil model promote` does; both answers are shown.
async function promote(model, version) {
  const reason = modelReason();
  if (!reason) return;
  const out = $("#release-result");
  const done = await post("/ui/api/models/promote", { model, version, reason });
  if (!done.ok) { out.textContent = done.answer.error || "refused"; out.className = "result bad"; return; }
  const sw = await post("/ui/api/command", { command: "switch_model", model: done.answer.switch_to, reason });
  out.textContent = done.answer.outcome + " · the running session: " +
    (sw.ok ? sw.answer.outcome : "did not switch: " + (sw.answer.error || "refused"));
  out.className = "result ok";
  await loadModels();
}

async function loadModels() {
  const { models } = await getJson("/ui/api/models");
  const holder = $("#models");
  holder.replaceChildren();
  if (!models.length) holder.appendChild(el("p", "No model in the registry (vigil model register).", "muted"));
  for (const m of models) {
    holder.appendChild(el("h2", m.name));
    if (m.aliases.length) holder.appendChild(el("p", m.aliases.map(([a, v]) => `${a} → ${v}`).join(" · ")));
    const versions = el("table");
    versions.appendChild(row(["version", "status", "registered", "by", "gate", ""]));
    for (const v of m.versions) {
      const gate = v.gate_skipped ? "skipped" : Array.isArray(v.gate_checks)
        ? `${v.gate_checks.filter((c) => c.passed).length}/${v.gate_checks.length} passed`
        : v.gate_checks ? JSON.stringify(v.gate_checks).slice(0, 80) : "";
      let action = "";
      if (v.status === "staging" && session.role === "operator") {
        action = el("button", "Promote", "promote");
        action.addEventListener("click", () => promote(m.name, v.version));
      }
      versions.appendChild(row([v.version, v.status, v.created_at, v.created_by, gate, action]));
    }
    holder.appendChild(versions);
    for (const r of m.releases.slice(-3).reverse()) {
      const box = el("div", null, "card");
      box.appendChild(el("p", `release ${r.id}: ${r.candidate} beside ${r.production || "-"} · ${r.stage} · ${r.state}` +
        (r.weight != null ? ` · weight ${r.weight}` : "") + ` · step ${r.step}`));
      box.appendChild(el("p", r.detail, "muted"));
      if (r.state === "running" || r.state === "paused") {
        const actions = el("div", null, "actions operator-only");
        for (const step of r.state === "running" ? ["step", "pause", "abort"] : ["resume", "abort"]) {
          const b = el("button", step, step === "abort" ? "danger" : "");
          b.addEventListener("click", () => releaseStep(m.name, step));
          actions.appendChild(b);
        }
        box.appendChild(actions);
      }
      holder.appendChild(box);
    }
    if (m.shadow && m.shadow.report) {
      const rep = m.shadow.report;
      holder.appendChild(el("h3", `shadow report (release ${m.shadow.release}, ${m.shadow.sessions} sessions): ${rep.passed ? "PASS" : "not passed"}`));
      const t = el("table");
      t.appendChild(row(["standard", "verdict", "value", "threshold"]));
      for (const s of rep.standards || []) {
        t.appendChild(row([s.name, s.passed === null ? "WAIT" : s.passed ? "PASS" : "FAIL", s.value, s.threshold]));
      }
      holder.appendChild(t);
    }
  }
}

// ---- reports ------------------------------------------------------------------------

// A figure of a backtest: a share as a percentage, a ratio to two places, a withheld one "—".
function share(v) { return typeof v === "number" ? `${(v * 100).toFixed(1)}%` : "—"; }
function ratio(v) { return typeof v === "number" ? v.toFixed(2) : "—"; }

function renderBacktests(runs) {
  const tbody = $("#backtests tbody");
  tbody.replaceChildren(...runs.map((r) => {
    const figures = r.layers.map((l) =>
      `${l.layer}: ${share(l.total_return)} · ${ratio(l.sharpe)}${l.sharpe_withheld ? " (withheld: " + l.sharpe_withheld + ")" : ""} · ${share(l.max_drawdown)} · ${l.trades}`).join("\n");
    const link = el("a", "open");
    link.href = r.page;
    link.target = "_blank";
    link.rel = "noopener";
    const verdict = r.verdict ? r.verdict.toUpperCase() : "";
    const failed = r.failed.map((f) => `failed: ${f}`).join("\n");
    const tr = row([r.model, `${r.command} on ${r.data}`, r.at, verdict,
      r.error || [figures, failed].filter((t) => t).join("\n"), link]);
    tr.className = r.verdict === "failed" || r.error ? "level-ERROR" : "";
    return tr;
  }));
  if (!runs.length) tbody.appendChild(row(["no backtest on record (vigil backtest, vigil gate)", "", "", "", "", ""]));
}

async function loadReports() {
  const [lists, drills, backtests] = await Promise.all([
    getJson("/ui/api/checklists"), getJson("/ui/api/drills"), getJson("/ui/api/backtests")]);
  renderBacktests(backtests.runs);
  const days = $("#day-reports");
  days.replaceChildren();
  for (const d of lists.day_reports) {
    const box = el("div", null, "card");
    const a = el("a", `${d.session}: ${d.headline ?? ""}`);
    a.href = d.text;
    box.appendChild(a);
    if (d.chart) {
      const img = el("img");
      img.src = d.chart;
      img.alt = `equity and drawdown, ${d.session}`;
      img.className = "day-chart";
      box.appendChild(img);
    }
    days.appendChild(box);
  }
  if (!lists.day_reports.length) days.appendChild(el("p", "No day report yet: one is written after each close.", "muted"));
  const cl = $("#checklists");
  cl.replaceChildren();
  for (const c of lists.checklists) {
    const r = c.report;
    cl.appendChild(el("h3", `${r.checklist || c.file}: ${r.status || r.error} (${r.at || ""})`, r.status === "pass" ? "ok" : r.status === "warn" ? "warn" : "bad"));
    const t = el("table");
    for (const k of r.checks || []) {
      const tr = row([k.name, k.status, k.reason]);
      tr.className = k.status === "fail" ? "level-ERROR" : k.status === "warn" ? "level-WARN" : "";
      t.appendChild(tr);
    }
    cl.appendChild(t);
  }
  if (!lists.checklists.length) cl.appendChild(el("p", "No checklist has run yet.", "muted"));
  const tbody = $("#drills tbody");
  tbody.replaceChildren(...drills.runs.map((r) => {
    const tr = row([r.drill, r.finished_at, r.passed ? "PASS" : "FAIL", `${r.checks_passed}/${r.checks_total}`]);
    tr.className = r.passed ? "" : "level-ERROR";
    tr.addEventListener("click", () => {
      $("#drill-detail").replaceChildren(el("pre", JSON.stringify(r.report, null, 1)));
    });
    return tr;
  }));
  if (!drills.runs.length) tbody.appendChild(row(["no drill on record (vigil drill all)", "", "", ""]));
}

// ---- log and traces -----------------------------------------------------------------

function traceLink(id) {
  if (!id) return "";
  const a = el("a", id.slice(0, 12), "trace");
  a.href = "#trace/" + encodeURIComponent(id);
  a.title = id;
  return a;
}

async function loadLog() {
  const params = new URLSearchParams(new FormData($("#log-filters")));
  params.delete("trace");
  params.set("limit", "200");
  const { lines, unreadable } = await getJson("/ui/api/log?" + params.toString());
  $("#log-note").textContent = unreadable ? "Stopped at a line that is not JSON (a line being written is read at the next look): " + unreadable : "";
  const tbody = $("#log-lines tbody");
  tbody.replaceChildren(...lines.slice().reverse().map((l) => {
    const tr = row([l.timestamp, l.level, l.service, l.event, traceLink(l.trace_id), JSON.stringify(l.data)]);
    tr.className = "level-" + l.level;
    tr.lastChild.className = "data";
    return tr;
  }));
}

async function loadTrace(id) {
  $("#trace").hidden = false;
  $("#trace-id").textContent = id;
  $("#log-trace").value = id;
  const { lines } = await getJson("/ui/api/log?limit=500&trace=" + encodeURIComponent(id));
  const t0 = lines.length ? Date.parse(lines[0].timestamp) : 0;
  $("#trace-steps tbody").replaceChildren(...lines.map((l) => {
    const tr = row([(Date.parse(l.timestamp) - t0).toFixed(0), l.service, l.event, JSON.stringify(l.data)]);
    tr.lastChild.className = "data";
    return tr;
  }));
  if (!lines.length) $("#trace-steps tbody").appendChild(row(["", "", "no line with this trace id", ""]));
}

// ---- fleet --------------------------------------------------------------------------

let fleetTimer = null;

function fleetChain(v) {
  if (!v) return "no monitor";
  if (v.broken || v.missing) return `${v.broken} broken · ${v.missing} missing`;
  return `intact · ${v.lines} lines`;
}

async function loadFleet() {
  const f = await getJson("/ui/api/fleet");
  const body = $("#fleet tbody");
  if (!f.configured) {
    $("#fleet-summary").textContent = "this node is in no fleet";
    body.replaceChildren();
    return;
  }
  const counts = {};
  for (const n of f.nodes) counts[n.state] = (counts[n.state] || 0) + 1;
  $("#fleet-summary").textContent = `${f.nodes.length} nodes · ` +
    Object.entries(counts).map(([state, c]) => `${c} ${state}`).join(" · ");
  body.replaceChildren(...f.nodes.map((n) => {
    const v = n.view;
    const alerts = Object.values((v && v.alerts) || {});
    const tr = row([
      n.node + (n.node === f.node ? " (this node)" : ""),
      `${n.state} · renewed ${n.lease_age_s} s ago (lease ${n.lease_s} s)`,
      !v || v.ready === null ? "—" : v.ready ? "ready" : "not ready",
      (v && v.trading_state) || "—",
      n.pnl === null || n.pnl === undefined ? "—" : n.pnl,
      alerts.length ? alerts.map((a) => `${a.severity} ${a.rule}: ${a.headline}`).join("\n") : "none",
      v && typeof v.lag_s === "number" ? `${v.lag_s.toFixed(2)} s` : "—",
      fleetChain(v),
      `#${n.last_seq ?? "—"} ${n.last_event || ""} ${n.last_at || ""}`,
    ]);
    tr.className = "fleet-" + n.state;
    tr.dataset.node = n.node;
    return tr;
  }));
  if (!f.nodes.length) body.appendChild(row(["no node has published a lease yet", "", "", "", "", "", "", "", ""]));
  $("#fleet-note").textContent = `${f.url} · stream ${f.stream} · read ${new Date().toLocaleTimeString()}`;
}

// ---- pages --------------------------------------------------------------------------

async function show() {
  const [page, arg] = (location.hash.slice(1) || "overview").split("/");
  const name = page === "alert" ? "alerts" : page === "trace" ? "log" : page;
  for (const s of document.querySelectorAll(".page")) s.hidden = s.id !== "page-" + name;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.page === name);
  try {
    if (name === "positions") await loadPositions();
    if (name === "models") await loadModels();
    if (name === "reports") await loadReports();
    clearInterval(fleetTimer);
    if (name === "fleet") {
      await loadFleet();
      fleetTimer = setInterval(() => loadFleet().catch((e) => { $("#fleet-note").textContent = "Cannot load: " + e.message; }), 5000);
    }
    if (name === "alerts") await loadAlerts(page === "alert" ? decodeURIComponent(arg || "") : null);
    if (name === "log") {
      await loadLog();
      if (page === "trace" && arg) await loadTrace(decodeURIComponent(arg)); else $("#trace").hidden = true;
    }
  } catch (e) {
    document.querySelector("#page-" + name).prepend(el("p", "Cannot load: " + e.message, "bad"));
  }
}

async function start() {
  // Both at once: on a phone's link each round trip is what the page waits for.
  const [who, status] = await Promise.all([getJson("/ui/api/session"), getJson("/ui/api/status")]);
  session = who;
  document.body.classList.toggle("viewer", session.role !== "operator");
  $("#logout").title = `logged in as ${session.who} (${session.role})`;
  $("#nav-fleet").hidden = !session.fleet;
  $("#breaker-trip").addEventListener("click", () => breaker("breaker_trip"));
  $("#breaker-reset").addEventListener("click", () => breaker("breaker_reset"));
  $("#silence-form").addEventListener("submit", silence);
  $("#log-filters").addEventListener("submit", (e) => {
    e.preventDefault();
    const id = $("#log-trace").value.trim();
    if (id) location.hash = "#trace/" + encodeURIComponent(id); else { location.hash = "#log"; loadLog(); }
  });
  window.addEventListener("hashchange", show);
  renderStatus(status);
  connect();
  await show();
}

start();
