// The playground's judging rules, pure (no DOM, no network): how a run becomes a mission, how a
// mission's result becomes a verdict per case, and how expected and actual output compare.

// What the judge reports of an execute's output at most (record.stdout / record.stderr).
export const RECORD_CAP = 4096;
export const DIR = "prog";
export const INPUT = "input.txt";
export const EXPECTED = "expected.txt";
const COMPILE_TIME_MS = 30000;
const COMPILE_MEMORY_KIB = 512 * 1024;
const OUTPUT_KIB = 16 * 1024;
// Runs the argv in `prog/`: the source and whatever compiling it makes stay in one folder a
// scoped execute can import whole, whatever the compiler names its outputs. "$@" is the argv
// as given: nothing is quoted, nothing is parsed by a shell.
const IN_DIR = ["sh", "-c", `cd ${DIR} && exec "$@"`, "sh"];

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: false });

export function toBase64(text) {
  const bytes = encoder.encode(text);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

export function bytesOf(b64) {
  const binary = atob(b64 || "");
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

export function fromBase64(b64) {
  return decoder.decode(bytesOf(b64));
}

export function dataUrl(text) {
  return "data:text/plain;base64," + toBase64(text);
}

// The text of a data: URL (base64 or percent-encoded), or null for any other URL.
export function textOfDataUrl(url) {
  if (typeof url !== "string" || !url.startsWith("data:")) return null;
  const comma = url.indexOf(",");
  if (comma < 0) return null;
  const head = url.slice(5, comma);
  const body = url.slice(comma + 1);
  if (head.split(";").includes("base64")) return fromBase64(body);
  try {
    return decodeURIComponent(body);
  } catch {
    return body;
  }
}

function fill(template, file) {
  const dot = file.lastIndexOf(".");
  const stem = dot > 0 ? file.slice(0, dot) : file;
  return template.map((arg) => arg.replaceAll("{file}", file).replaceAll("{stem}", stem));
}

// The mission of one Run: compile once in prepare (when the language compiles), one task per
// case running the program on the case's input. `limits` = {cpuMs, memoryKib}; `scoped` runs
// each case in a fresh sandbox that imports only the program folder and its input.
export function buildMission(language, source, cases, limits, scoped) {
  const file = language.source_file;
  const prepare = { file: { [`${DIR}/${file}`]: dataUrl(source) }, execute: [] };
  if (language.compile) {
    // At least what the language says its compiler needs (javac, rustc), else the page's own.
    const needs = language.compile_limits || {};
    prepare.execute.push({
      name: "compile",
      command: [...IN_DIR, ...fill(language.compile, file)],
      time_limit: Math.max(COMPILE_TIME_MS, needs.time_limit || 0),
      memory_limit: Math.max(COMPILE_MEMORY_KIB, needs.memory_limit || 0),
      stdout: "compile.out",
      stderr: "compile.err",
      record: { stdout: RECORD_CAP, stderr: RECORD_CAP },
    });
  }
  const run = {
    name: "run",
    command: [...IN_DIR, ...fill(language.run, file)],
    time_limit: limits.cpuMs,
    memory_limit: limits.memoryKib,
    output_limit: OUTPUT_KIB,
    stdin: INPUT,
    stdout: "stdout.txt",
    stderr: "stderr.txt",
    record: { stdout: RECORD_CAP, stderr: RECORD_CAP },
  };
  if (scoped) run.scope = { enable: true, import: [DIR, INPUT] };
  const task = cases.map((c) => {
    const files = { [INPUT]: dataUrl(c.input) };
    if (c.expected !== null && c.expected !== undefined && c.expected !== "") {
      files[EXPECTED] = dataUrl(c.expected);
    }
    return { file: files };
  });
  // The language, not an image: the server picks the image that provides it.
  return { language: language.id, prepare, tasks: { task, execute: [run] } };
}

// What a stored mission (GET's `mission`, the normalised echo) says the page asked for:
// {image, sourceFile, source, cases, limits, scoped, language}; null when the page did not
// make it.
export function readMission(mission) {
  if (!mission || !mission.prepare || !mission.tasks) return null;
  const names = Object.keys(mission.prepare.file || {}).filter((n) => n.startsWith(DIR + "/"));
  const run = (mission.tasks.execute || [])[0];
  if (names.length !== 1 || !run || run.name !== "run") return null;
  const source = textOfDataUrl(mission.prepare.file[names[0]]);
  const cases = (mission.tasks.task || []).map((t) => {
    const files = t.file || {};
    const expected = EXPECTED in files ? textOfDataUrl(files[EXPECTED]) : "";
    return { input: textOfDataUrl(files[INPUT]) ?? "", expected: expected ?? "" };
  });
  return {
    image: mission.image || null,
    language: mission.language || null,
    sourceFile: names[0].slice(DIR.length + 1),
    source: source ?? "",
    cases,
    limits: { cpuMs: run.time_limit, memoryKib: run.memory_limit },
    scoped: Boolean(run.scope && run.scope.enable),
  };
}

// Trailing whitespace of every line and trailing empty lines do not count (the Judge0 door's
// rule, strip_output: ASCII whitespace as Python's bytes.rstrip has it, so a no-break space
// counts); "\r\n" is a line end like "\n".
export function normalise(text) {
  const lines = text.split("\n").map((l) => l.replace(/[ \t\n\r\v\f]+$/, ""));
  while (lines.length && lines[lines.length - 1] === "") lines.pop();
  return lines;
}

export function sameOutput(expected, actual) {
  const a = normalise(expected);
  const b = normalise(actual);
  return a.length === b.length && a.every((line, i) => line === b[i]);
}

// A line diff of expected against actual (normalised): [{op: " " | "-" | "+", text}], "-" for
// a line only expected has, "+" for one only the program printed. LCS up to a size, then the
// lines side by side.
export function diffLines(expected, actual) {
  const a = normalise(expected);
  const b = normalise(actual);
  const n = a.length;
  const m = b.length;
  if (n * m > 250000) {
    const out = [];
    for (let i = 0; i < Math.max(n, m); i++) {
      if (i < n && i < m && a[i] === b[i]) out.push({ op: " ", text: a[i] });
      else {
        if (i < n) out.push({ op: "-", text: a[i] });
        if (i < m) out.push({ op: "+", text: b[i] });
      }
    }
    return out;
  }
  const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const out = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      out.push({ op: " ", text: a[i] });
      i++;
      j++;
    } else if (lcs[i + 1][j] >= lcs[i][j + 1]) {
      out.push({ op: "-", text: a[i++] });
    } else {
      out.push({ op: "+", text: b[j++] });
    }
  }
  while (i < n) out.push({ op: "-", text: a[i++] });
  while (j < m) out.push({ op: "+", text: b[j++] });
  return out;
}

export const VERDICT_NAMES = {
  AC: "Accepted",
  WA: "Wrong answer",
  TLE: "Time limit exceeded",
  MLE: "Memory limit exceeded",
  OLE: "Output limit exceeded",
  RE: "Runtime error",
  CE: "Compilation error",
  SE: "System error",
  OK: "Ran",
  CUT: "Not compared",
};

function output(entry, which) {
  const b64 = ((entry && entry.record) || {})[which] || "";
  const bytes = bytesOf(b64);
  return { text: decoder.decode(bytes), cut: bytes.length >= RECORD_CAP };
}

// The verdict of one case from its execute's entry (meta + record) and its expected output
// ("" or null: none given). A program whose own verdict is not "" keeps it (TLE, MLE, ...);
// one that ran cleanly is AC or WA against the expected output, or OK without one. Output cut
// at the record cap is compared only as far as it goes: a difference there is WA, otherwise
// the case is CUT (not judged) rather than silently accepted.
export function judgeCase(entry, expected, compiled) {
  const meta = (entry && entry.meta) || {};
  const stdout = output(entry, "stdout");
  const stderr = output(entry, "stderr");
  const base = {
    meta,
    stdout: stdout.text,
    stdoutCut: stdout.cut,
    stderr: stderr.text,
    stderrCut: stderr.cut,
    message: meta.message || "",
    diff: null,
  };
  if (!compiled) return { ...base, verdict: "CE" };
  if (meta.status) return { ...base, verdict: meta.status };
  if (expected === null || expected === undefined || expected === "") {
    return { ...base, verdict: "OK" };
  }
  if (stdout.cut) {
    const lines = normalise(stdout.text);
    lines.pop(); // the last line may be cut in the middle
    const want = normalise(expected);
    const agrees = lines.every((line, i) => line === want[i]);
    if (agrees) return { ...base, verdict: "CUT" };
  } else if (sameOutput(expected, stdout.text)) {
    return { ...base, verdict: "AC" };
  }
  return { ...base, verdict: "WA", diff: diffLines(expected, stdout.text) };
}

// The whole judgement of a finished mission made by buildMission:
// {compile: {ok, entry, stdout, stderr, message} | null, cases: [judgeCase...]}.
export function judgeResult(result, cases) {
  const prepared = ((result && result.prepare) || {}).execute || [];
  const compileEntry = prepared.find((e) => e.name === "compile") || null;
  let compile = null;
  if (compileEntry) {
    const meta = compileEntry.meta || {};
    compile = {
      ok: !meta.status,
      meta,
      stdout: output(compileEntry, "stdout").text,
      stderr: output(compileEntry, "stderr").text,
      message: meta.message || "",
    };
  }
  const compiled = compile === null || compile.ok;
  const tasks = (result && result.task) || [];
  const judged = cases.map((c, i) => {
    const entry = ((tasks[i] || {}).execute || [])[0] || null;
    return judgeCase(entry, c.expected, compiled);
  });
  return { compile, cases: judged };
}

// One line per verdict kind: "2 AC · 1 WA".
export function tally(verdicts) {
  const counts = new Map();
  for (const v of verdicts) counts.set(v, (counts.get(v) || 0) + 1);
  return [...counts].map(([v, n]) => `${n} ${v}`).join(" · ");
}
