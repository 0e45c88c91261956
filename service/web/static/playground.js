// The playground: wires the page to the judge's public API (api.js) and its judging rules
// (judging.js). State that survives a reload: the token (sessionStorage, this tab only) and
// the mission id (the URL's ?mission=, never the token).

import { Api, ApiError } from "./api.js";
import { attachEditor } from "./editor.js";
import {
  RECORD_CAP,
  VERDICT_NAMES,
  buildMission,
  fromBase64,
  judgeResult,
  readMission,
  tally,
} from "./judging.js";
import { isStarter, starterFor } from "./starters.js";
import { parseMetrics, statusRows } from "./status.js";

const TOKEN_KEY = "judge.token";
const LANGUAGE_KEY = "judge.language";
const DRAFT_KEY = "judge.draft";
const HISTORY_LIMIT = 20;
const STATUS_EVERY_MS = 15000;
const FINAL = new Set(["done", "cancelled", "failed"]);

const $ = (id) => document.getElementById(id);
const ui = {
  token: $("token"),
  language: $("language"),
  cpu: $("cpu"),
  memory: $("memory"),
  run: $("run"),
  cancel: $("cancel"),
  source: $("source"),
  gutter: document.querySelector(".editor .gutter"),
  scoped: $("scoped"),
  caseList: $("case-list"),
  addCase: $("add-case"),
  caseTemplate: $("case-template"),
  progress: $("progress"),
  compile: $("compile"),
  results: $("results"),
  history: $("history"),
  historyRefresh: $("history-refresh"),
  status: $("status"),
};

const api = new Api(() => ui.token.value.trim());
const editor = attachEditor(ui.source, ui.gutter);
let languages = [];
let following = null; // AbortController of the mission being followed
let current = null; // {id, cases}

// ---- small DOM helpers ----------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function say(kind, text, details = []) {
  ui.progress.replaceChildren(
    el("p", { class: kind, role: kind === "error" ? "alert" : null, text }),
    ...(details.length
      ? [el("ul", { class: "errors" }, ...details.map((d) => el("li", { text: d })))]
      : []),
  );
}

function kib(value) {
  if (value === undefined || value === null) return "–";
  return value >= 1024 ? `${(value / 1024).toFixed(1)} MiB` : `${value} KiB`;
}

function ms(value) {
  if (value === undefined || value === null) return "–";
  return value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${value} ms`;
}

function ago(seconds) {
  const d = Date.now() / 1000 - seconds;
  if (d < 60) return "just now";
  if (d < 3600) return `${Math.floor(d / 60)} min ago`;
  if (d < 86400) return `${Math.floor(d / 3600)} h ago`;
  return new Date(seconds * 1000).toLocaleDateString();
}

// ---- token -------------------------------------------------------------------------------------

ui.token.value = sessionStorage.getItem(TOKEN_KEY) || "";
ui.token.addEventListener("change", () => {
  const token = ui.token.value.trim();
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  loadLanguages().then(() => {
    refreshHistory();
    if (!current) restoreFromUrl();
  });
});

function needToken() {
  if (ui.token.value.trim()) return false;
  say("error", "Enter a token first: the judge runs code only for a token it knows.");
  ui.token.focus();
  return true;
}

// ---- languages -------------------------------------------------------------------------------

function languageLabel(lang) {
  return lang.version ? `${lang.name} ${lang.version}` : lang.name;
}

function selectedLanguage() {
  return languages.find((l) => l.id === ui.language.value) || null;
}

async function loadLanguages() {
  if (!ui.token.value.trim()) {
    ui.language.replaceChildren(el("option", { value: "", text: "enter a token first" }));
    return;
  }
  try {
    const { body } = await api.languages();
    // "multifile" runs a script among extra files the page cannot attach: not offered here.
    const all = Array.isArray(body) ? body : body.languages || [];
    languages = all.filter((l) => l.run && l.id !== "multifile");
  } catch (e) {
    languages = [];
    const text = e instanceof ApiError && e.status === 401 ? "unknown token" : "unavailable";
    ui.language.replaceChildren(el("option", { value: "", text }));
    if (e instanceof ApiError && e.status === 401)
      say("error", `The token was refused: ${e.message}`);
    return;
  }
  if (!languages.length) {
    ui.language.replaceChildren(el("option", { value: "", text: "none installed" }));
    say(
      "error",
      "The server offers no language yet: no sandbox image declares one, or the engine is down.",
    );
    return;
  }
  const previous = ui.language.value || localStorage.getItem(LANGUAGE_KEY) || "";
  ui.language.replaceChildren(
    ...languages.map((l) => el("option", { value: l.id, text: languageLabel(l) })),
  );
  if (languages.some((l) => l.id === previous)) ui.language.value = previous;
  if (isStarter(ui.source.value)) setSource(starterFor(selectedLanguage()));
}

ui.language.addEventListener("change", () => {
  localStorage.setItem(LANGUAGE_KEY, ui.language.value);
  if (isStarter(ui.source.value)) setSource(starterFor(selectedLanguage()));
});

function setSource(text) {
  ui.source.value = text;
  editor.renumber();
}

// ---- cases -------------------------------------------------------------------------------------

let caseCounter = 0;

function addCase(input = "", expected = "") {
  const fragment = ui.caseTemplate.content.cloneNode(true);
  const fieldset = fragment.querySelector("fieldset");
  const n = ++caseCounter;
  const [inputLabel, expectedLabel] = fieldset.querySelectorAll("label");
  const inputArea = fieldset.querySelector(".input");
  const expectedArea = fieldset.querySelector(".expected");
  inputArea.id = `input-${n}`;
  expectedArea.id = `expected-${n}`;
  inputLabel.htmlFor = inputArea.id;
  expectedLabel.htmlFor = expectedArea.id;
  inputArea.value = input;
  expectedArea.value = expected;
  fieldset.querySelector(".remove").addEventListener("click", () => {
    fieldset.remove();
    renumberCases();
    ui.caseList.querySelector("textarea")?.focus();
  });
  ui.caseList.append(fieldset);
  renumberCases();
  return fieldset;
}

function renumberCases() {
  const all = [...ui.caseList.querySelectorAll("fieldset")];
  all.forEach((fieldset, i) => {
    fieldset.querySelector("legend").textContent = `Case ${i + 1}`;
    const remove = fieldset.querySelector(".remove");
    remove.setAttribute("aria-label", `Remove case ${i + 1}`);
    remove.hidden = all.length === 1;
  });
}

function readCases() {
  return [...ui.caseList.querySelectorAll("fieldset")].map((f) => ({
    input: f.querySelector(".input").value,
    expected: f.querySelector(".expected").value,
  }));
}

function setCases(cases) {
  ui.caseList.replaceChildren();
  for (const c of cases.length ? cases : [{ input: "", expected: "" }])
    addCase(c.input, c.expected);
}

ui.addCase.addEventListener("click", () => {
  addCase().querySelector(".input").focus();
});

// ---- running -----------------------------------------------------------------------------------

function limits() {
  const cpu = Number(ui.cpu.value);
  const memory = Number(ui.memory.value);
  const problems = [];
  if (!(cpu >= 0.001 && cpu <= 60)) problems.push("CPU time must be between 0.001 and 60 s.");
  if (!(memory >= 1 && memory <= 2048)) problems.push("Memory must be between 1 and 2048 MiB.");
  return {
    problems,
    cpuMs: Math.max(1, Math.round(cpu * 1000)),
    memoryKib: Math.round(memory * 1024),
  };
}

async function run() {
  if (needToken()) return;
  const language = selectedLanguage();
  if (!language) {
    say("error", "Choose a language first.");
    ui.language.focus();
    return;
  }
  const lim = limits();
  if (lim.problems.length) {
    say("error", "Check the limits.", lim.problems);
    return;
  }
  const cases = readCases();
  const mission = buildMission(language, ui.source.value, cases, lim, ui.scoped.checked);
  stopFollowing();
  ui.run.disabled = true;
  say("busy", "Submitting…");
  ui.compile.replaceChildren();
  ui.results.replaceChildren();
  let id;
  try {
    const { body } = await api.submit(mission);
    id = body.msg.id;
  } catch (e) {
    ui.run.disabled = false;
    if (e instanceof ApiError) {
      say(
        "error",
        `The judge refused the run: ${e.message}`,
        e.errors.map((x) => `${x.path}: ${x.message}`),
      );
    } else {
      say("error", `The judge could not be reached: ${e.message}`);
    }
    return;
  }
  const url = new URL(location.href);
  url.searchParams.set("mission", String(id));
  history.pushState({ mission: id }, "", url);
  refreshHistory();
  refreshStatus();
  await show(id, cases, language, "queued");
  ui.run.disabled = false;
  refreshHistory();
  refreshStatus();
}

function stopFollowing() {
  if (following) following.abort();
  following = null;
  ui.cancel.hidden = true;
}

// Show mission `id` (made for `cases`): live while it runs, then its judgement (or, for a
// mission the page did not make, `finish(done)`).
async function show(id, cases, language, state, finish = null) {
  current = { id, cases, language };
  const controller = new AbortController();
  following = controller;
  placeholders(cases);
  progress({ state, n: 0, executes: 0 });
  ui.cancel.hidden = FINAL.has(state);
  let executes = 0;
  try {
    const done = await api.follow(
      id,
      (type, data) => {
        if (current?.id !== id) return;
        if (type === "state") {
          executes = data.executes || executes;
          progress({ state: data.state, n: 0, executes });
        } else if (type === "execute") {
          executes = data.executes || executes;
          progress({ state: "running", n: data.n, executes });
          live(data);
        }
      },
      controller.signal,
    );
    if (current?.id !== id) return;
    if (finish) finish(done);
    else render(id, done.state, done.mission_result, done.error, cases, language);
  } catch (e) {
    if (controller.signal.aborted) return;
    if (e instanceof ApiError && e.status === 404)
      say("error", `Mission ${id} is not one of this token's.`);
    else say("error", `Lost the mission's progress: ${e.message}. Reload to try again.`);
  } finally {
    if (following === controller) {
      following = null;
      ui.cancel.hidden = true;
    }
  }
}

function progress({ state, n, executes }) {
  const label =
    {
      queued: "Queued…",
      running: executes ? `Running: ${n} of ${executes} executes` : "Running…",
    }[state] || state;
  const bar = el("progress", {
    max: executes || 1,
    value: executes ? n : null,
    "aria-label": "Progress",
  });
  if (state === "queued") bar.removeAttribute("value");
  ui.progress.replaceChildren(
    el("p", { class: "busy", text: `Mission ${current.id}: ${label}` }),
    bar,
  );
}

function placeholders(cases) {
  ui.compile.replaceChildren();
  ui.results.replaceChildren(
    ...cases.map((_, i) =>
      el(
        "li",
        { class: "case-result pending", "data-case": i },
        el(
          "div",
          { class: "head" },
          el("span", { class: "badge", text: "…" }),
          el("strong", { text: `Case ${i + 1}` }),
          el("span", { class: "name", text: "waiting" }),
        ),
      ),
    ),
  );
}

// One execute finished: the compile's verdict, or a case's (a program's own verdict is final;
// a clean run waits for the result to be compared).
function live(data) {
  if (data.stage === "prepare" && data.name === "compile") {
    const failed = Boolean(data.meta && data.meta.status);
    ui.compile.replaceChildren(
      el("p", {
        class: failed ? "compile failed" : "compile ok",
        text: failed ? "Compilation failed…" : "Compiled.",
      }),
    );
    return;
  }
  if (data.stage !== "task") return;
  const item = ui.results.querySelector(`[data-case="${data.task}"]`);
  if (!item) return;
  let status = (data.meta && data.meta.status) || "";
  // A clean run with no expected output is final now (OK); one with some is compared at the end.
  const expected = current?.cases[data.task]?.expected;
  if (!status && !expected) status = "OK";
  if (ui.compile.querySelector(".compile.failed")) status = "CE"; // nothing to run
  const head = item.querySelector(".head");
  head.querySelector(".badge").textContent = status || "✓";
  head.querySelector(".name").textContent = status
    ? VERDICT_NAMES[status] || status
    : "ran, checking…";
  item.className = `case-result ${status ? "v-" + status : "pending"}`;
}

function outputBlock(title, text, cut) {
  if (!text && !cut) return null;
  return el(
    "section",
    { class: "output", "aria-label": title },
    el("h4", { text: title }),
    el("pre", { text }),
    cut
      ? el("p", {
          class: "cut",
          text: `Cut: the judge reports the first ${RECORD_CAP} bytes only.`,
        })
      : null,
  );
}

function diffBlock(diff) {
  const pre = el("pre", { class: "diff", "aria-label": "Difference: - expected, + actual" });
  for (const line of diff) {
    pre.append(
      el("span", {
        class: line.op === "-" ? "del" : line.op === "+" ? "ins" : "same",
        text: `${line.op} ${line.text}\n`,
      }),
    );
  }
  return el("div", { class: "output" }, el("h4", { text: "Expected (−) against actual (+)" }), pre);
}

function render(id, state, result, error, cases, language) {
  const judged = judgeResult(result, cases);
  const verdicts = judged.cases.map((c) => c.verdict);
  const line = el(
    "p",
    { class: "summary" },
    el("strong", { text: `Mission ${id}` }),
    el("span", { class: "what", text: language ? `· ${languageLabel(language)}` : "" }),
  );
  if (state === "done") {
    // One chip per verdict kind, in the order the cases first show it ("2 AC · 1 WA").
    tally(verdicts)
      .split(" · ")
      .forEach((part, i) => {
        if (i) line.append(el("span", { class: "sep", "aria-hidden": "true", text: " · " }));
        const verdict = part.split(" ")[1];
        line.append(
          el("span", { class: `chip v-${verdict}` }, el("span", { class: "badge", text: part })),
        );
      });
  } else {
    line.append(el("span", { class: "error", text: `${state}${error ? `: ${error}` : ""}` }));
  }
  ui.progress.replaceChildren(line);
  ui.compile.replaceChildren();
  if (judged.compile && !judged.compile.ok) {
    const text = [judged.compile.stderr, judged.compile.stdout].filter(Boolean).join("\n");
    ui.compile.append(
      el(
        "section",
        { class: "compile-error", "aria-label": "Compilation error" },
        el("h3", { text: "Compilation error" }),
        judged.compile.message ? el("p", { class: "message", text: judged.compile.message }) : null,
        el("pre", { text: text || "(the compiler printed nothing)" }),
      ),
    );
  } else if (judged.compile && (judged.compile.stderr || judged.compile.stdout)) {
    ui.compile.append(
      el(
        "details",
        { class: "compile-warnings" },
        el("summary", { text: "Compiler messages" }),
        el("pre", { text: judged.compile.stderr + judged.compile.stdout }),
      ),
    );
  }
  ui.results.replaceChildren(
    ...judged.cases.map((c, i) => {
      const meta = c.meta || {};
      const stats = [];
      if (c.verdict !== "CE") {
        stats.push(
          `${ms(meta["cpu-time-usage"])} CPU`,
          `${ms(meta["real-time-usage"])} real`,
          kib(meta["memory-usage"]),
        );
        if (meta["exit-code"] !== undefined)
          stats.push(meta.signal ? `signal ${meta.signal}` : `exit ${meta["exit-code"]}`);
      }
      return el(
        "li",
        { class: `case-result v-${c.verdict}`, "data-case": i },
        el(
          "div",
          { class: "head" },
          el("span", { class: "badge", text: c.verdict }),
          el("strong", { text: `Case ${i + 1}` }),
          el("span", { class: "name", text: VERDICT_NAMES[c.verdict] || c.verdict }),
          el("span", { class: "stats", text: stats.join(" · ") }),
        ),
        c.message && c.verdict !== "CE" ? el("p", { class: "message", text: c.message }) : null,
        c.verdict === "CUT"
          ? el("p", {
              class: "cut",
              text:
                `The output is longer than the ${RECORD_CAP} bytes the judge reports ` +
                "and agrees with the expected output that far: not compared.",
            })
          : null,
        c.diff ? diffBlock(c.diff) : null,
        c.verdict === "CE" ? null : outputBlock("Output", c.stdout, c.stdoutCut),
        c.verdict === "CE" ? null : outputBlock("Error output", c.stderr, c.stderrCut),
      );
    }),
  );
}

// A mission the playground did not make: its state, then each execute with its verdict, its
// figures and its recorded output.
function renderOther(body) {
  const result = body.mission_result || {};
  const rows = [];
  const stage = (name, entries, task) =>
    (entries || []).forEach((e, i) =>
      rows.push({ where: task === null ? name : `task ${task}`, i, e }),
    );
  stage("prepare", (result.prepare || {}).execute, null);
  (result.task || []).forEach((t, n) => stage("task", t.execute, n));
  stage("final", (result.final || {}).execute, null);
  ui.progress.replaceChildren(
    el(
      "p",
      { class: "summary" },
      el("strong", { text: `Mission ${body.id}` }),
      el("span", { class: "what", text: `· ${body.state}` }),
    ),
    el("p", {
      class: "muted",
      text: `Not made by the playground: each execute as GET /api/missions/${body.id} reports it.`,
    }),
  );
  ui.compile.replaceChildren();
  ui.results.replaceChildren(
    ...rows.map(({ where, i, e }) => {
      const meta = e.meta || {};
      const verdict = meta.status || "OK";
      const out = fromBase64((e.record || {}).stdout || "");
      const err = fromBase64((e.record || {}).stderr || "");
      return el(
        "li",
        { class: `case-result v-${verdict}` },
        el(
          "div",
          { class: "head" },
          el("span", { class: "badge", text: verdict }),
          el("strong", { text: e.name || `${where} #${i + 1}` }),
          el("span", { class: "name", text: where }),
          el("span", {
            class: "stats",
            text: `${ms(meta["cpu-time-usage"])} CPU · ${kib(meta["memory-usage"])}`,
          }),
        ),
        meta.message ? el("p", { class: "message", text: meta.message }) : null,
        outputBlock("Output", out, false),
        outputBlock("Error output", err, false),
      );
    }),
  );
}

ui.run.addEventListener("click", run);
document.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
    e.preventDefault();
    if (!ui.run.disabled) run();
  }
});

ui.cancel.addEventListener("click", async () => {
  if (!current) return;
  try {
    await api.cancel(current.id);
  } catch (e) {
    say("error", `Could not cancel: ${e.message}`);
  }
});

// ---- restoring a mission from the URL ------------------------------------------------------

function languageOf(made) {
  if (made.language) {
    const byId = languages.find(
      (l) => l.id === made.language || (l.aliases || []).includes(made.language),
    );
    if (byId) return byId;
  }
  return (
    languages.find((l) => l.image === made.image && l.source_file === made.sourceFile) ||
    languages.find((l) => l.source_file === made.sourceFile) ||
    null
  );
}

async function restoreFromUrl() {
  const id = new URLSearchParams(location.search).get("mission");
  if (!id) return;
  if (!/^\d{1,18}$/.test(id)) {
    say("error", "The address names no mission.");
    return;
  }
  if (!ui.token.value.trim()) {
    say("error", `Enter the token that ran mission ${id} to see it.`);
    return;
  }
  stopFollowing();
  let body;
  try {
    ({ body } = await api.mission(id));
  } catch (e) {
    say(
      "error",
      e instanceof ApiError && e.status === 404
        ? `Mission ${id} is not one of this token's.`
        : `Could not load mission ${id}: ${e.message}`,
    );
    return;
  }
  const made = readMission(body.mission);
  if (!made) {
    // Not the playground's (the API's, a front door's): every execute as the judge reports it.
    if (FINAL.has(body.state)) {
      current = { id: body.id, cases: [], language: null };
      renderOther(body);
    } else {
      await show(body.id, [], null, body.state, (done) => renderOther(done));
    }
    return;
  }
  const language = languageOf(made);
  if (language) ui.language.value = language.id;
  setSource(made.source);
  setCases(made.cases);
  ui.cpu.value = String(made.limits.cpuMs / 1000);
  ui.memory.value = String(Math.round(made.limits.memoryKib / 1024));
  ui.scoped.checked = made.scoped;
  if (FINAL.has(body.state)) {
    current = { id: body.id, cases: made.cases, language };
    render(body.id, body.state, body.mission_result, body.error, made.cases, language);
  } else {
    await show(body.id, made.cases, language, body.state);
  }
}

window.addEventListener("popstate", () => {
  const id = new URLSearchParams(location.search).get("mission");
  if (id) restoreFromUrl();
  else {
    stopFollowing();
    current = null;
    say("idle", "Write a program, give it an input, press Run.");
    ui.compile.replaceChildren();
    ui.results.replaceChildren();
  }
});

// ---- history -----------------------------------------------------------------------------------

let historyShown = 0;

function historyItem(m) {
  const lang = m.language ? languages.find((l) => l.id === m.language) : null;
  const what = lang ? lang.name : m.language || (m.image || "").replace(/^judge\//, "") || m.kind;
  const link = el(
    "a",
    { href: `?mission=${m.id}`, class: `state-${m.state}` },
    el("span", { class: "id", text: `#${m.id}` }),
    el("span", { class: "what", text: what }),
    el("span", { class: "state", text: m.state }),
    el("time", {
      datetime: new Date(m.created_at * 1000).toISOString(),
      text: ago(m.created_at),
    }),
  );
  link.addEventListener("click", (e) => {
    if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    history.pushState({ mission: m.id }, "", `?mission=${m.id}`);
    restoreFromUrl();
  });
  return el("li", {}, link);
}

// The newest missions (`more`: the next page after those shown), with "Show more" while the
// token has older ones.
async function refreshHistory(more = false) {
  if (!ui.token.value.trim()) return;
  const offset = more === true ? historyShown : 0;
  let body;
  try {
    ({ body } = await api.history(HISTORY_LIMIT, offset));
  } catch (e) {
    ui.history.replaceChildren(
      el("li", { class: "muted", text: `History unavailable: ${e.message}` }),
    );
    if (e instanceof ApiError && e.status === 401)
      say("error", `The token was refused: ${e.message}`);
    return;
  }
  const missions = body.missions || [];
  if (!offset) ui.history.replaceChildren();
  ui.history.querySelector(".more")?.remove();
  if (!offset && !missions.length) {
    ui.history.append(el("li", { class: "muted", text: "No runs yet." }));
    return;
  }
  ui.history.append(...missions.map(historyItem));
  historyShown = offset + missions.length;
  if (body.total > historyShown) {
    const button = el("button", {
      type: "button",
      class: "link",
      text: `Show more (${body.total - historyShown} older)`,
    });
    button.addEventListener("click", () => refreshHistory(true));
    ui.history.append(el("li", { class: "more" }, button));
  }
}

ui.historyRefresh.addEventListener("click", () => refreshHistory());

// ---- server status -----------------------------------------------------------------------------

async function refreshStatus() {
  let health = null;
  let metrics = null;
  try {
    const resp = await fetch("/healthz", { cache: "no-store" });
    health = await resp.json();
  } catch {
    health = null;
  }
  try {
    const resp = await fetch("/metrics", { cache: "no-store" });
    if (resp.ok) metrics = parseMetrics(await resp.text());
  } catch {
    metrics = null;
  }
  const rows = statusRows(health, metrics);
  ui.status.replaceChildren(
    ...rows.flatMap((r) => [
      el("dt", { text: r.label }),
      el(
        "dd",
        { class: r.ok === false ? "bad" : null },
        r.ok === null
          ? null
          : el("span", { class: `dot ${r.ok ? "ok" : "bad"}`, "aria-hidden": "true" }),
        r.value,
      ),
    ]),
  );
}

function statusLoop() {
  if (!document.hidden) refreshStatus();
  setTimeout(statusLoop, STATUS_EVERY_MS);
}

// ---- start -------------------------------------------------------------------------------------

// ---- the draft: what is being written survives a reload of this tab ----------------------

function saveDraft() {
  const draft = {
    source: ui.source.value,
    cases: readCases(),
    cpu: ui.cpu.value,
    memory: ui.memory.value,
    scoped: ui.scoped.checked,
  };
  try {
    sessionStorage.setItem(DRAFT_KEY, JSON.stringify(draft));
  } catch {
    // Storage full or refused: the draft is a convenience, the page works without it.
  }
}

function restoreDraft() {
  let draft = null;
  try {
    draft = JSON.parse(sessionStorage.getItem(DRAFT_KEY) || "null");
  } catch {
    draft = null;
  }
  if (!draft || !Array.isArray(draft.cases)) return false;
  setSource(String(draft.source || ""));
  setCases(
    draft.cases.map((c) => ({ input: String(c.input ?? ""), expected: String(c.expected ?? "") })),
  );
  ui.cpu.value = String(draft.cpu || ui.cpu.value);
  ui.memory.value = String(draft.memory || ui.memory.value);
  ui.scoped.checked = Boolean(draft.scoped);
  return true;
}

let draftTimer = 0;
document.querySelector("main").addEventListener("input", () => {
  clearTimeout(draftTimer);
  draftTimer = setTimeout(saveDraft, 300);
});
document.querySelector("main").addEventListener("change", saveDraft);
window.addEventListener("pagehide", saveDraft);

if (!restoreDraft()) setCases([{ input: "world\n", expected: "" }]);
editor.renumber();
statusLoop();
loadLanguages().then(() => {
  refreshHistory();
  restoreFromUrl();
});
