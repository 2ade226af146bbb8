// medagent serve UI: patient picker, question, live steps (server-sent events), write approvals, cited records.
// Every value from the server is put in the page as text (never as HTML).
"use strict";

const $ = (id) => document.getElementById(id);
const ui = { patient: null, run: null, stream: null, steps: 0 };

const STATE_LABELS = { running: "Running", awaiting_approval: "Waiting for your approval",
                       interrupted: "Interrupted", finished: "Finished" };

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

class ApiError extends Error {
  constructor(status, body) { super(body.message || `HTTP ${status}`); this.status = status; this.code = body.error; }
}

async function api(path, options = {}) {
  const init = { credentials: "same-origin", headers: {}, ...options };
  if (options.json !== undefined) {
    init.method = init.method || "POST";
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(options.json);
  }
  const response = await fetch(path, init);
  const body = await response.json().catch(() => ({}));
  if (response.status === 401 && path !== "/api/session") showLogin();
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

function showError(node, message) { node.textContent = message; node.hidden = !message; }
// "search_observations" -> "Search observations" (tool names are the registry's; no second list here)
const toolLabel = (tool) => (tool ? tool.replaceAll("_", " ").replace(/^./, (c) => c.toUpperCase())
                                     .replace(/\bfhir\b/gi, "FHIR") : "(unusable reply)");
const tokens = (n) => Number(n || 0).toLocaleString("en-US");

// ---------- sign-in (only when the service needs a token; the token is never shown or stored by the page) ----
function showLogin() { $("login").hidden = false; $("login-token").focus(); }

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    await api("/api/session", { json: { token: $("login-token").value } });
    $("login-token").value = "";
    $("login").hidden = true;
    start();
  } catch (error) {
    $("login-token").value = "";
    showError($("login-error"), error.message);
  }
});

// ---------- service info ----------
async function loadInfo() {
  const info = await api("/api/info");
  const writes = { ask: "writes need your approval", refuse: "read-only", auto: "writes auto-approved" }[info.approval];
  $("service-info").replaceChildren(el("span", { class: "chip", text: `model: ${info.model}` }),
                                   el("span", { class: "chip", text: writes || info.approval }),
                                   el("span", { class: "chip", text: info.fhir }));
}

// ---------- patient picker ----------
let searchTimer = null;
$("patient-search").addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(searchPatients, 250);
});

function patientFacts(p) {
  const parts = [p.gender, p.age !== null && p.age !== undefined ? `${p.age} y` : null,
                 p.birth_date ? `born ${p.birth_date}` : null, p.mrn ? `MRN ${p.mrn}` : null,
                 p.deceased ? `died ${p.deceased.slice(0, 10)}` : null];
  return parts.filter(Boolean).join(" · ");
}

async function searchPatients() {
  const q = $("patient-search").value.trim();
  const params = new URLSearchParams({ q });
  if ($("now").value) params.set("now", $("now").value);
  const list = $("patient-results");
  try {
    const { patients } = await api(`/api/patients?${params}`);
    list.replaceChildren(...patients.map((p) => el("li", {
      class: "patient-option", tabindex: "0", "data-id": p.id,
      onclick: () => selectPatient(p), onkeydown: (e) => { if (e.key === "Enter") selectPatient(p); },
    }, el("div", { class: "patient-name", text: p.name }), el("div", { class: "patient-facts", text: patientFacts(p) }))));
    if (!patients.length) list.replaceChildren(el("li", { class: "muted small", text: "No patient matches." }));
  } catch (error) {
    list.replaceChildren(el("li", { class: "error-text", text: error.message }));
  }
}

// launched: the patient the EHR has open (a SMART launch), which this page may not change
function selectPatient(patient, launched = false) {
  ui.patient = patient;
  const box = $("patient-selected");
  box.replaceChildren(
    el("div", {}, el("div", { class: "patient-name", text: patient.name }),
       el("div", { class: "patient-facts", text: patientFacts(patient) }),
       launched ? el("div", { class: "muted small", id: "patient-launch", text: "In context from the EHR launch" }) : null),
    launched ? null : el("button", { type: "button", text: "Change", onclick: clearPatient }));
  box.hidden = false;
  $("patient-finder").hidden = true;
  updateAsk();
  $("question").focus();
}

function clearPatient() {
  ui.patient = null;
  $("patient-selected").hidden = true;
  $("patient-finder").hidden = false;
  updateAsk();
}

// ---------- asking ----------
function updateAsk() { $("ask").disabled = !(ui.patient && $("question").value.trim() && $("now").value); }
$("question").addEventListener("input", updateAsk);
$("now").addEventListener("input", updateAsk);
$("question").addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) $("ask").click(); });

$("ask").addEventListener("click", async () => {
  showError($("ask-error"), "");
  $("ask").disabled = true;
  try {
    const run = await api("/api/runs", { json: { question: $("question").value.trim(), patient: ui.patient.id,
                                                 now: $("now").value } });
    openRun(run.run_id);
    loadRuns();
  } catch (error) {
    showError($("ask-error"), error.message);
  } finally {
    updateAsk();
  }
});

// ---------- recent runs ----------
async function loadRuns() {
  try {
    const { runs } = await api("/api/runs?limit=15");
    $("runs").replaceChildren(...runs.map((r) => el("li", { onclick: () => openRun(r.run_id), "data-id": r.run_id },
      el("span", { class: "q", text: r.question, title: r.question }),
      el("span", { class: `badge ${r.state}`, text: STATE_LABELS[r.state] || r.state }))));
    if (!runs.length) $("runs").replaceChildren(el("li", { class: "muted small", text: "No runs yet." }));
  } catch (error) { /* shown by the login box or on the next try */ }
}

// ---------- one run ----------
async function openRun(runId) {
  if (ui.stream) ui.stream.close();
  const view = await api(`/api/runs/${encodeURIComponent(runId)}`);
  ui.run = view;
  ui.steps = 0;
  $("empty").hidden = true;
  $("run").hidden = false;
  $("steps").replaceChildren();
  $("run-question").textContent = view.question;
  const patientText = ui.patient && ui.patient.id === view.patient ? ui.patient.name : view.patient ? `Patient/${view.patient}` : "no patient";
  $("run-context").textContent = `${patientText} · as of ${view.now.slice(0, 10)} · run ${view.run_id.slice(0, 8)}`;
  view.steps.forEach(addStep);
  renderStatus(view);
  renderPending(view.pending_write);
  renderAnswer(view);
  if (view.state === "finished" || view.state === "interrupted") return;
  const stream = new EventSource(`/api/runs/${encodeURIComponent(runId)}/events?after=${ui.steps}`);
  ui.stream = stream;
  stream.addEventListener("step", (e) => { addStep(JSON.parse(e.data)); });
  stream.addEventListener("status", (e) => renderStatus({ ...ui.run, ...JSON.parse(e.data) }));
  stream.addEventListener("action", (e) => renderWorking(JSON.parse(e.data)));
  stream.addEventListener("approval", (e) => renderPending(JSON.parse(e.data)));
  stream.addEventListener("done", (e) => {
    stream.close();
    const done = JSON.parse(e.data);
    ui.run = done;
    renderStatus(done);
    renderPending(null);
    renderAnswer(done);
    loadRuns();
  });
}

function renderStatus(view) {
  ui.run = { ...ui.run, ...view };
  const badge = $("run-status");
  const failed = view.state === "finished" && view.status !== "answered";
  badge.className = `badge ${failed ? "failed" : view.state}`;
  badge.textContent = failed ? `Stopped: ${view.status.replace("_", " ")}` : STATE_LABELS[view.state] || view.state;
  $("run-usage").textContent = `${view.step_count} tool calls · tokens ${tokens(view.prompt_tokens)} in / ${tokens(view.completion_tokens)} out`;
  showError($("run-error"), view.error || "");
  $("resume").hidden = view.state !== "interrupted";
  if (view.state !== "running") $("working").hidden = true;
  else if (!ui.run.next_action) renderWorking(null);
}

function renderWorking(action) {
  $("working").hidden = false;
  $("working-text").textContent = action ? `${toolLabel(action.tool)} ${compactArgs(action.arguments)}` : "The agent is thinking…";
}

function compactArgs(args) {
  if (!args) return "";
  const parts = Object.entries(args).filter(([k]) => k !== "patient")
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`);
  const text = parts.join(", ");
  return text.length > 160 ? `${text.slice(0, 157)}…` : text;
}

function refLink(reference) {
  return el("a", { class: "ref", href: `#${reference}`, "data-ref": reference, text: reference,
                   onclick: (e) => { e.preventDefault(); openResource(reference); } });
}

function addStep(step) {
  ui.steps += 1;
  $("working").hidden = false;
  $("working-text").textContent = "The agent is thinking…";
  const isWrite = step.approval !== null && step.approval !== undefined;
  const classes = ["step", isWrite ? "write" : "", step.kind === "answer" ? "answer-step" : "", step.error ? "failed" : ""];
  const seconds = (step.model_s || 0) + (step.tool_s || 0);
  const head = el("div", { class: "step-head" },
    el("span", { class: "step-no", text: `${ui.steps}.` }),
    el("span", { class: "step-tool", text: toolLabel(step.tool) }),
    step.kind !== "answer" ? el("span", { class: "step-args", text: compactArgs(step.arguments) }) : null,
    isWrite ? el("span", { class: `step-approval ${step.approval.startsWith("approved") || step.approval.startsWith("auto") ? "approved" : ""}`,
                           text: step.approval }) : null,
    el("span", { class: "step-time", text: seconds ? `${seconds.toFixed(2)} s` : "" }));
  const item = el("li", { class: classes.filter(Boolean).join(" "), "data-tool": step.tool || "" }, head);
  if (step.kind === "answer" && step.arguments) item.append(el("div", { class: "step-result", text: step.arguments.answer || "" }));
  else if (step.result) item.append(el("div", { class: "step-result", text: step.result }));
  if (step.error) item.append(el("p", { class: "step-error", text: step.error }));
  const refs = [...(step.wrote || []), ...(step.references || []).filter((r) => !(step.wrote || []).includes(r))].slice(0, 12);
  if (refs.length) item.append(el("div", { class: "step-refs" }, ...refs.map(refLink)));
  $("steps").append(item);
}

function renderPending(pending) {
  const panel = $("approval");
  panel.hidden = !pending;
  showError($("approval-error"), "");
  if (!pending) return;
  ui.pending = pending;
  $("approval-title").textContent = pending.title;
  const selected = ui.patient && pending.patient === `Patient/${ui.patient.id}` ? `${ui.patient.name} — ` : "";
  const rows = [["patient", pending.patient ? `${selected}${pending.patient}` : "(none)"],
                ...Object.entries(pending.arguments).filter(([k]) => k !== "patient")];
  $("approval-arguments").replaceChildren(...rows.map(([k, v]) => el("tr", {},
    el("th", { text: k.replaceAll("_", " ") }), el("td", { text: typeof v === "string" ? v : JSON.stringify(v) }))));
  renderPreview(pending.preview);
  $("approval-dated").textContent = `Dated at the run's clinical date (${ui.run.now.slice(0, 10)}) unless a time is given above; ` +
    "tagged as written by medagent for this run.";
  $("approve").disabled = $("reject").disabled = false;
  loadRuns();
  $("working").hidden = true;
  panel.scrollIntoView({ block: "nearest" });
}

// What approving writes (the tool's own preview, built without sending): a summary line and the resource itself.
const PREVIEW_LABELS = { create: "Approving creates this", update: "Approving changes the record to this",
                         none: "Approving writes nothing new", error: "This write would fail" };
function renderPreview(preview) {
  $("approval-preview").hidden = !preview;
  if (!preview) return;
  const what = $("approval-what");
  what.textContent = `${PREVIEW_LABELS[preview.action] || preview.action}` +
    (preview.resource ? `: ${preview.reference || `a new ${preview.resource.resourceType}`}` : "");
  what.classList.toggle("fails", preview.action === "error");
  $("approval-summary").textContent = preview.error || preview.summary;
  $("approval-resource-box").hidden = !preview.resource;
  const note = { create: "the server adds id, versionId and lastUpdated",
                 update: "the server sets a new versionId and lastUpdated", none: "already in the record" }[preview.action];
  $("approval-resource-label").textContent = preview.resource
    ? `FHIR ${preview.resource.resourceType} (JSON${note ? `; ${note}` : ""})` : "";
  $("approval-resource").textContent = preview.resource ? JSON.stringify(preview.resource, null, 2) : "";
}

async function decide(approve) {
  $("approve").disabled = $("reject").disabled = true;
  try {
    await api(`/api/runs/${encodeURIComponent(ui.run.run_id)}/decision`,
              { json: { pending_id: ui.pending.id, approve, reason: $("reject-reason").value.trim() } });
    $("reject-reason").value = "";
    renderPending(null);
    renderWorking(null);
  } catch (error) {
    showError($("approval-error"), error.message);
  }
}
$("approve").addEventListener("click", () => decide(true));
$("reject").addEventListener("click", () => decide(false));

function renderAnswer(view) {
  const box = $("answer");
  box.hidden = view.answer === null || view.answer === undefined;
  if (box.hidden) return;
  $("answer-text").textContent = view.answer;
  const links = (view.citations || []).map(refLink);
  $("citations").replaceChildren(el("span", { class: "label-inline", text: links.length ? "Sources:" : "No sources cited." }), ...links);
}

$("resume").addEventListener("click", async () => {
  try {
    await api(`/api/runs/${encodeURIComponent(ui.run.run_id)}/resume`, { method: "POST" });
    openRun(ui.run.run_id);
  } catch (error) {
    showError($("run-error"), error.message);
  }
});

// ---------- cited records ----------
async function openResource(reference) {
  const [kind, id] = reference.split("/");
  const drawer = $("resource-drawer");
  $("resource-title").textContent = reference;
  $("resource-summary").textContent = "Loading…";
  $("resource-json").textContent = "";
  drawer.hidden = false;
  document.body.classList.add("drawer-open");
  try {
    const now = ui.run ? `?now=${encodeURIComponent(ui.run.now)}` : "";
    const view = await api(`/api/resources/${encodeURIComponent(kind)}/${encodeURIComponent(id)}${now}`);
    $("resource-summary").textContent = view.summary;
    $("resource-json").textContent = JSON.stringify(view.resource, null, 2);
  } catch (error) {
    $("resource-summary").textContent = error.message;
  }
}
function closeResource() {
  $("resource-drawer").hidden = true;
  document.body.classList.remove("drawer-open");
}
$("resource-close").addEventListener("click", closeResource);
document.addEventListener("keydown", (e) => { if (e.key === "Escape") closeResource(); });

// ---------- start ----------
async function start() {
  const session = await api("/api/session");
  if (session.auth && !session.authorized) { showLogin(); return; }
  if (!$("now").value) $("now").value = new Date().toISOString().slice(0, 10);
  await loadInfo();
  await loadRuns();
  if (session.launch && session.launch.patient) {
    const { patients } = await api(`/api/patients?now=${encodeURIComponent($("now").value)}`);
    if (patients.length) selectPatient(patients[0], true);
  } else {
    searchPatients();
  }
  updateAsk();
}
start();
