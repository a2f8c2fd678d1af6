// KubeStack-AI console: a static page over the REST API. The token stays in sessionStorage (this tab only).
"use strict";

const TOKEN_KEY = "kubestack.token";
const REFRESH_MS = 5000;
const $ = (id) => document.getElementById(id);
let me = null;
let timer = null;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== null && value !== undefined && value !== false) node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

class ApiError extends Error {
  constructor(status, body) {
    super(typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail || body));
    this.status = status;
  }
}

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY)}` };
  if (options.body) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { ...options, headers });
  const body = await response.json().catch(() => ({}));
  if (response.status === 401) { logout("The token was refused: " + (body.detail || "unauthorized")); }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

function when(iso) { return iso ? new Date(iso).toLocaleString() : "—"; }
function pct(x) { return `${Math.round(x * 100)}%`; }
function severity(s) { return el("span", { class: `sev-${s}`, text: s }); }
const canDecide = () => me && (me.role === "operator" || me.role === "admin");

async function markCause(inc, h, verdict) {
  try {
    const out = await api(`/api/v1/incidents/${encodeURIComponent(inc.incident_id)}/feedback`, {
      method: "POST", body: JSON.stringify({ component: h.component, cause: h.cause, verdict }) });
    setStatus(`${out.cause} on ${out.component} marked ${verdict} by ${out.actor}.`);
  } catch (error) {
    setStatus(`Could not mark the cause: ${error.message}`, true);
  }
}

function verdictButtons(inc, h) {
  if (!canDecide()) return null;
  return el("span", { class: "verdict" },
    el("button", { type: "button", class: "cause-right", title: "This was the cause",
      onclick: () => markCause(inc, h, "right"), text: "Right" }),
    el("button", { type: "button", class: "cause-wrong", title: "This was not the cause",
      onclick: () => markCause(inc, h, "wrong"), text: "Wrong" }));
}

function rcaBlock(inc) {
  const rca = inc.rca;
  if (!rca) return el("p", { class: "muted", text: "No root-cause report yet." });
  const rows = rca.hypotheses.slice(0, 3).map((h) => el("tr", { class: "hypothesis" },
    el("td", { text: `#${h.rank}` }), el("td", { text: h.cause }), el("td", { text: h.component }),
    el("td", { class: "confidence", text: pct(h.confidence) }),
    el("td", { class: "runbooks", text: (h.runbooks || []).join(", ") || "—" }),
    el("td", {}, verdictButtons(inc, h))));
  return el("div", { class: "rca" },
    el("table", {}, el("thead", {}, el("tr", {}, ...["", "Likely cause", "Component", "Confidence", "Runbooks",
      canDecide() ? "Operator verdict" : ""].map((t) => el("th", { text: t })))), el("tbody", {}, ...rows)),
    rca.narrative ? el("p", { class: "narrative", text: rca.narrative }) : null,
    el("p", { class: "muted", text: `Narrative by ${rca.narrator}, ${when(rca.ts)}` }));
}

function ago(iso) {
  const s = Math.max((Date.now() - new Date(iso).getTime()) / 1000, 0);
  if (s < 3600) return `${Math.max(Math.round(s / 60), 1)} min ago`;
  if (s < 48 * 3600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
}

function similarBlock(rca) {
  const similar = (rca && rca.similar) || [];
  if (!similar.length) return null;
  return el("div", { class: "similar" }, el("h4", { text: `Similar past incidents (${similar.length})` }),
    el("table", {}, el("thead", {}, el("tr", {}, ...["Incident", "Opened", "Alike", "Cause then", "What was done",
      "Outcome"].map((t) => el("th", { text: t })))),
    el("tbody", {}, ...similar.map((s) => el("tr", { class: "similar-incident", "data-incident-id": s.incident_id },
      el("td", {}, el("strong", { text: s.title }), el("br"), el("code", { text: s.incident_id })),
      el("td", { title: when(s.opened_at), text: ago(s.opened_at) }),
      el("td", { class: "similarity", text: pct(s.similarity) }),
      el("td", { text: s.cause ? `${s.cause} on ${s.component}` : "—" }),
      el("td", {}, ...(s.actions.length ? s.actions.map((a) => el("div", { class: "past-action" },
        el("code", { text: a.action }), " ", el("span", { class: `status status-${a.status}`, text: a.status }),
        a.approved_by ? el("span", { class: "muted", text: ` approved by ${a.approved_by}` }) : null))
        : [el("span", { class: "muted", text: "nothing" })])),
      el("td", { class: "outcome", text: s.outcome }))))));
}

function timeline(signals) {
  if (!signals.length) return null;
  return el("details", { class: "timeline" }, el("summary", { text: `Timeline (${signals.length} signals)` }),
    el("table", {}, el("tbody", {}, ...signals.map((s) => el("tr", {},
      el("td", { text: when(s.first_seen) }), el("td", {}, severity(s.severity)), el("td", { text: s.kind }),
      el("td", { text: s.name }), el("td", { text: s.resource }), el("td", { text: s.summary }))))));
}

function silencedBadge(inc) {
  const by = inc.silenced_by || [];
  return by.length ? el("span", { class: "silenced", title: by.join(", "), text: " silenced" }) : null;
}

async function setAck(inc, verb) {
  try {
    const out = await api(`/api/v1/incidents/${encodeURIComponent(inc.incident_id)}/${verb}`,
      { method: "POST", body: JSON.stringify({ via: "console" }) });
    setStatus(out.acknowledged ? `Incident ${inc.incident_id} acknowledged by ${out.actor}.`
      : `Incident ${inc.incident_id} is no longer acknowledged.`);
  } catch (error) {
    setStatus(`Could not ${verb}: ${error.message}`, true);
  }
  refresh();
}

function ackBlock(inc) {
  const box = el("div", { class: "ack" });
  api(`/api/v1/incidents/${encodeURIComponent(inc.incident_id)}/ack`).then((state) => {
    box.append(el("span", { class: "ack-state", text: state.acknowledged
      ? `Acknowledged by ${state.actor} (${state.via}) ${when(state.ts)}` : "Not acknowledged" }));
    if (canDecide()) {
      const verb = state.acknowledged ? "unack" : "ack";
      box.append(" ", el("button", { type: "button", class: verb, onclick: () => setAck(inc, verb),
        text: state.acknowledged ? "Un-acknowledge" : "Acknowledge" }));
    }
  }).catch(() => box.append(el("span", { class: "muted", text: "ack state unavailable" })));
  return box;
}

function renderIncidents(items) {
  const box = $("incidents");
  box.replaceChildren();
  if (!items.length) { box.append(el("p", { class: "muted", text: "No open incident." })); return; }
  for (const inc of items) {
    box.append(el("article", { class: "card incident", "data-incident-id": inc.incident_id },
      el("h3", {}, severity(inc.severity), ` ${inc.title}`, silencedBadge(inc)), ackBlock(inc),
      el("p", { class: "muted", text: `${inc.status} · opened ${when(inc.opened_at)} · ${inc.incident_id} · ` +
        inc.resources.map((r) => `${r.kind}/${r.name}`).join(", ") }),
      inc.summary ? el("p", { text: inc.summary }) : null,
      rcaBlock(inc), similarBlock(inc.rca), timeline(inc.signals)));
  }
}

async function decide(proposal, verb) {
  const reason = window.prompt(`Reason to ${verb} ${proposal.action} (${proposal.proposal_id})?`);
  if (reason === null) return;
  if (!reason.trim()) { setStatus(`A reason is required to ${verb}.`, true); return; }
  try {
    const out = await api(`/api/v1/proposals/${encodeURIComponent(proposal.proposal_id)}/${verb}`,
      { method: "POST", body: JSON.stringify({ reason }) });
    setStatus(`Proposal ${proposal.proposal_id} ${out.state} by ${out.decision.actor}.`);
  } catch (error) {
    setStatus(`Could not ${verb}: ${error.message}`, true);
  }
  refresh();
}

function renderProposals(items) {
  const box = $("proposals");
  box.replaceChildren();
  if (!items.length) { box.append(el("p", { class: "muted", text: "Nothing waits for a decision." })); return; }
  for (const view of items) {
    const p = view.proposal;
    const allowed = canDecide() && p.risk !== "forbidden";
    const why = !canDecide() ? "your token is a viewer" : (p.risk === "forbidden" ? "forbidden action" : null);
    box.append(el("article", { class: "card proposal", "data-proposal-id": p.proposal_id },
      el("h3", { text: `${p.action} — risk ${p.risk}` }),
      el("p", { class: "muted", text: `incident ${p.incident_id} · ${JSON.stringify(p.params)}` }),
      p.expected_effect ? el("p", { text: `Expected: ${p.expected_effect}` }) : null,
      p.rollback ? el("p", { text: `Rollback: ${p.rollback}` }) : null,
      canDecide() ? el("div", { class: "actions" },
        el("button", { type: "button", class: "approve", disabled: !allowed, title: why,
          onclick: () => decide(p, "approve"), text: "Approve" }),
        el("button", { type: "button", class: "reject", disabled: !allowed, title: why,
          onclick: () => decide(p, "reject"), text: "Reject" }))
        : el("p", { class: "muted", text: "Viewers cannot decide." })));
  }
}

function renderPredictions(items) {
  const box = $("predictions");
  box.replaceChildren();
  const live = items.filter((p) => p.status !== "withdrawn");
  if (!live.length) { box.append(el("p", { class: "muted", text: "Nothing is expected to run out." })); return; }
  box.append(el("table", {}, el("thead", {}, el("tr", {}, ...["Resource", "Signal", "Runs out", "Earliest",
    "Confidence", "Severity"].map((t) => el("th", { text: t })))),
  el("tbody", {}, ...live.map((p) => el("tr", { class: "prediction" },
    el("td", { text: `${p.resource.kind}/${p.resource.name}` }), el("td", { text: p.signal }),
    el("td", { text: when(p.exhaustion_at) }), el("td", { text: when(p.exhaustion_lower_bound) }),
    el("td", { text: pct(p.confidence) }), el("td", {}, severity(p.severity)))))));
}

const csv = (id) => $(id).value.split(",").map((x) => x.trim()).filter(Boolean);

function silenceWhat(s) {
  const parts = [...s.matchers_resources, ...s.matchers_services.map((x) => `service=${x}`),
    ...Object.entries(s.matchers_labels).map(([k, v]) => `${k}=${v}`)];
  return parts.join(", ") || `all of tenant ${s.tenant}`;
}

function silenceWhen(s) {
  if (s.schedule) return `${s.schedule}${s.duration_s ? ` for ${s.duration_s}s` : ""} (${s.timezone})`;
  return `${when(s.starts_at)} – ${when(s.ends_at)}`;
}

async function endSilence(s) {
  try {
    await api(`/api/v1/silences/${encodeURIComponent(s.silence_id)}/end`, { method: "POST", body: "{}" });
    setStatus(`Silence ${s.silence_id} ended.`);
  } catch (error) {
    setStatus(`Could not end the silence: ${error.message}`, true);
  }
  refresh();
}

function renderSilences(items) {
  const box = $("silences");
  box.replaceChildren();
  $("silence-form").hidden = !canDecide();
  if (!items.length) { box.append(el("p", { class: "muted", text: "Nothing is silenced." })); return; }
  box.append(el("table", {}, el("thead", {}, el("tr", {}, ...["Matches", "When", "Now", "By", "Why", ""]
    .map((t) => el("th", { text: t })))),
  el("tbody", {}, ...items.map((v) => el("tr", { class: "silence", "data-silence-id": v.silence.silence_id },
    el("td", { text: silenceWhat(v.silence) }), el("td", { text: silenceWhen(v.silence) }),
    el("td", { class: "silence-state", text: v.in_force ? "in force" : "waiting" }),
    el("td", { text: v.silence.created_by }), el("td", { text: v.silence.comment }),
    el("td", {}, canDecide() ? el("button", { type: "button", class: "end", onclick: () => endSilence(v.silence),
      text: "End" }) : null))))));
}

async function createSilence(event) {
  event.preventDefault();
  const minutes = Number($("silence-for").value);
  const body = { resources: csv("silence-resources"), services: csv("silence-services"),
    comment: $("silence-comment").value.trim(), timezone: $("silence-tz").value.trim() || "UTC" };
  if ($("silence-schedule").value.trim()) body.schedule = $("silence-schedule").value.trim();
  else if (minutes > 0) body.for_s = Math.round(minutes * 60);
  try {
    const out = await api("/api/v1/silences", { method: "POST", body: JSON.stringify(body) });
    setStatus(`Silence ${out.silence.silence_id} created (${out.in_force ? "in force now" : "waiting"}).`);
    $("silence-form").reset();
  } catch (error) {
    setStatus(`Could not silence: ${error.message}`, true);
  }
  refresh();
}

function setStatus(text, isError = false) {
  const node = $("status");
  node.textContent = text;
  node.className = isError ? "error" : "muted";
}

async function refresh() {
  if (!sessionStorage.getItem(TOKEN_KEY)) return;
  try {
    const [incidents, proposals, predictions, silences] = await Promise.all([
      api("/api/v1/incidents?status=open&limit=50"), api("/api/v1/proposals?state=pending&limit=100"),
      api("/api/v1/predictions?limit=100"), api("/api/v1/silences?state=active")]);
    renderIncidents(incidents.items);
    renderSilences(silences.items);
    renderProposals(proposals.items);
    renderPredictions(predictions.items);
  } catch (error) {
    if (error.status !== 401) setStatus(`Refresh failed: ${error.message}`, true);
  }
}

async function start() {
  try {
    me = await api("/api/v1/me");
  } catch (error) {
    if (error.status !== 401) $("login-error").textContent = error.message;
    return;
  }
  $("who").textContent = `${me.name} · ${me.role}${me.tenant ? " · tenant " + me.tenant : ""}`;
  $("login").hidden = true;
  $("main").hidden = false;
  $("logout").hidden = false;
  await refresh();
  clearInterval(timer);
  timer = setInterval(refresh, REFRESH_MS);
}

function logout(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  clearInterval(timer);
  me = null;
  $("main").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("who").textContent = "";
  $("login-error").textContent = message || "";
}

$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const token = $("token").value.trim();
  if (!token) { $("login-error").textContent = "Paste a token first."; return; }
  sessionStorage.setItem(TOKEN_KEY, token);
  $("token").value = "";
  start();
});
$("logout").addEventListener("click", () => logout());
$("silence-form").addEventListener("submit", createSilence);
if (sessionStorage.getItem(TOKEN_KEY)) start();
