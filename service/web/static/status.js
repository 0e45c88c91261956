// The status panel's figures from GET /healthz (JSON) and GET /metrics (Prometheus text).

// {"name{label=\"v\"}": value} of the samples in a Prometheus text exposition.
export function parseMetrics(text) {
  const samples = new Map();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = line.match(/^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?)\s+(\S+)/);
    if (m) samples.set(m[1], Number(m[2]));
  }
  return samples;
}

// Rows [{label, value, ok}] for the panel (ok: a check's outcome, null for a plain figure);
// `health` may be null (unreachable) and `metrics` null (not readable).
export function statusRows(health, metrics) {
  const checks = (health && health.checks) || {};
  const rows = [];
  const engine = checks.engine || {};
  rows.push({
    label: "Engine",
    // "20.10.24+dfsg1": the packager's suffix says nothing to a reader of the panel.
    value: engine.ok
      ? `Docker ${String(engine.version || "").split("+")[0]}`.trim()
      : `${engine.error || "unreachable"}${
          engine.down_s !== undefined ? ` (down for ${Math.round(engine.down_s)} s)` : ""
        }`,
    ok: Boolean(engine.ok),
  });
  const db = checks.database || {};
  rows.push({ label: "Database", value: db.ok ? db.engine : db.error || "unknown", ok: !!db.ok });
  const pool = (health && health.pool) || {};
  let ready = 0;
  let target = 0;
  for (const image of Object.values(pool.images || {})) {
    ready += Number(image.ready || 0);
    target += Number(image.target || 0);
  }
  const hits = Number(pool.hits || 0);
  const misses = Number(pool.misses || 0);
  rows.push({
    label: "Pool",
    value: `${ready} of ${target} warm · ${hits} hits, ${misses} misses`,
    ok: null,
  });
  const get = (name) => (metrics && metrics.has(name) ? metrics.get(name) : null);
  const num = (v) => (v === null ? "–" : String(v));
  rows.push({ label: "Queue depth", value: num(get("judge_queue_depth")), ok: null });
  rows.push({ label: "Running", value: num(get("judge_running")), ok: null });
  rows.push({
    label: "Callbacks pending",
    value: num(get('judge_callbacks{state="pending"}')),
    ok: null,
  });
  return rows;
}
