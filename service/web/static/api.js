// The judge's public API as the page uses it. The token goes in the Authorization header only:
// never in a URL (the event stream is read with fetch, not EventSource, for that reason).

export class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.code = err.code || "";
    this.path = err.path || "";
    this.errors = err.errors || [];
  }
}

export class Api {
  constructor(getToken) {
    this.getToken = getToken;
  }

  headers(extra = {}) {
    const token = this.getToken();
    return token ? { Authorization: `Bearer ${token}`, ...extra } : extra;
  }

  async json(path, init = {}) {
    const resp = await fetch(path, { ...init, headers: this.headers(init.headers) });
    let body = null;
    try {
      body = await resp.json();
    } catch {
      body = null;
    }
    if (!resp.ok) throw new ApiError(resp.status, body);
    return { status: resp.status, body };
  }

  languages() {
    return this.json("/api/languages");
  }

  submit(mission) {
    return this.json("/api/missions", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ mission }),
    });
  }

  mission(id) {
    return this.json(`/api/missions/${encodeURIComponent(id)}`);
  }

  cancel(id) {
    return this.json(`/api/missions/${encodeURIComponent(id)}`, { method: "DELETE" });
  }

  history(limit, offset = 0) {
    return this.json(`/api/missions?limit=${limit}&offset=${offset}`);
  }

  // Follow a mission's Server-Sent Events until `done` or `signal` aborts; onEvent(type, data)
  // for each. Reconnects (with Last-Event-ID) when the stream drops before `done`, at most
  // `retries` times in a row. Resolves with the `done` event's data.
  async follow(id, onEvent, signal, retries = 5) {
    let lastId = "";
    let failures = 0;
    for (;;) {
      const headers = this.headers({ Accept: "text/event-stream" });
      if (lastId) headers["Last-Event-ID"] = lastId;
      let resp;
      try {
        resp = await fetch(`/api/missions/${encodeURIComponent(id)}/events`, {
          headers,
          signal,
          cache: "no-store",
        });
      } catch (e) {
        if (signal.aborted || ++failures > retries) throw e;
        await pause(500 * failures, signal);
        continue;
      }
      if (!resp.ok) {
        let body = null;
        try {
          body = await resp.json();
        } catch {
          body = null;
        }
        throw new ApiError(resp.status, body);
      }
      let done = null;
      try {
        for await (const event of readEvents(resp.body, signal)) {
          failures = 0;
          if (event.id) lastId = event.id;
          onEvent(event.type, event.data);
          if (event.type === "done") {
            done = event.data;
            break;
          }
        }
      } catch (e) {
        if (signal.aborted) throw e;
      }
      if (done) return done;
      if (signal.aborted) throw new DOMException("aborted", "AbortError");
      if (++failures > retries) throw new Error("the event stream keeps ending early");
      await pause(500 * failures, signal);
    }
  }
}

function pause(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(new DOMException("aborted", "AbortError"));
    });
  });
}

// Parse a text/event-stream body into {id, type, data (parsed JSON)} events.
export async function* readEvents(body, signal) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  const onAbort = () => reader.cancel().catch(() => {});
  signal.addEventListener("abort", onAbort);
  let buffer = "";
  let event = { id: "", type: "message", data: [] };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let newline;
      while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + (buffer.startsWith("\r\n", newline) ? 2 : 1));
        if (line === "") {
          if (event.data.length) {
            yield { id: event.id, type: event.type, data: JSON.parse(event.data.join("\n")) };
          }
          event = { id: event.id, type: "message", data: [] };
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "data") event.data.push(value);
        else if (field === "event") event.type = value;
        else if (field === "id") event.id = value;
      }
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
    reader.releaseLock();
  }
}
