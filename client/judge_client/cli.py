"""The ``judge`` command.

- ``judge run FILE [--wait]``, ``judge status ID``, ``judge cancel ID``, ``judge images``: a
  client of a running server over HTTP (stdlib only), at ``--server``/``JUDGE_SERVER`` with
  ``--token``/``JUDGE_TOKEN``. ``run --wait`` follows the mission's events (a progress bar on a
  terminal) and falls back to polling when the server has no event stream.
- ``judge tokens add|list|revoke``: administration of the server's own database, on its host;
  it is the server's ``judge-admin tokens`` (``service.admin``), run as a separate process where
  the server is installed: the client never imports the server, its database nor its settings.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import importlib.util
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any, TextIO

DEFAULT_SERVER = "http://127.0.0.1:8000"
RECONNECT_FOR_S = 60.0  # how long --wait keeps reconnecting to a server that went away
# A mission's states, as the server names them (its orchestrator.mission.result.MissionState):
# a copy, since the client loads none of the server's code; a test checks the two agree.
STATES = ("queued", "running", "done", "cancelled", "failed")
QUEUED, RUNNING, DONE, CANCELLED, FAILED = STATES
FINAL_STATES = frozenset({DONE, FAILED, CANCELLED})
VERDICT_COLOURS = {"": "32", "TLE": "33", "MLE": "33", "OLE": "33", "RE": "31", "SE": "35"}


class ClientError(Exception):
    """A request to the server failed; the message says why (``status``: the HTTP status)."""

    status: int | None = None


class Client:
    """A tiny synchronous client of the judge's HTTP API."""

    def __init__(self, server: str, token: str, timeout_s: float = 30.0) -> None:
        self.server = server.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s

    def _open(self, method: str, path: str, body: Any, accept: str) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Accept", accept)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        return req

    def request(self, method: str, path: str, body: Any = None) -> Any:
        req = self._open(method, path, body, "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as e:
            raise self._refused(method, path, e) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise ClientError(f"cannot reach {self.server}: {reason}") from None
        except ValueError as e:
            raise ClientError(f"{method} {path}: the answer is not JSON: {e}") from None

    def events(
        self, path: str, last_event_id: str | None = None
    ) -> Iterator[tuple[str, str, Any] | None]:
        """Server-Sent Events of ``path``: ``(id, type, data)`` per event, None per keep-alive
        comment (so the caller can check its deadline). Raises ``ClientError``."""
        req = self._open("GET", path, None, "text/event-stream")
        if last_event_id:
            req.add_header("Last-Event-ID", last_event_id)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                event_id, kind = "", "message"
                data: list[str] = []
                for raw in resp:
                    line = raw.decode(errors="replace").rstrip("\r\n")
                    if not line:
                        if data:
                            yield event_id, kind, json.loads("\n".join(data))
                        kind, data = "message", []
                        continue
                    field, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if field == "":
                        yield None  # a comment: the server's keep-alive
                    elif field == "id":
                        event_id = value
                    elif field == "event":
                        kind = value
                    elif field == "data":
                        data.append(value)
        except urllib.error.HTTPError as e:
            raise self._refused("GET", path, e) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise ClientError(f"lost {self.server}: {reason}") from None
        except ValueError as e:
            raise ClientError(f"GET {path}: an event is not JSON: {e}") from None

    def _refused(self, method: str, path: str, e: urllib.error.HTTPError) -> ClientError:
        raw = e.read()
        try:
            err = json.loads(raw)["error"]
            where = f" (at {err['path']})" if err.get("path") else ""
            message = f"{err['message']}{where}"
        except (ValueError, KeyError, TypeError):
            message = raw.decode(errors="replace").strip() or e.reason
        error = ClientError(f"{method} {path}: HTTP {e.code}: {message}")
        error.status = e.code
        return error


def _decode(b64: str) -> str:
    try:
        return base64.b64decode(b64, validate=True).decode(errors="replace")
    except (binascii.Error, ValueError):
        return b64


class Printer:
    """Writes results; colours and a live status line only when ``out`` is a terminal."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty() and os.environ.get("NO_COLOR", "") == ""
        self._live = False

    def colour(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.tty else text

    def line(self, text: str) -> None:
        self.clear_live()
        print(text, file=self.out, flush=True)

    def live(self, text: str) -> None:
        """A status line rewritten in place on a terminal."""
        if self.tty:
            self.out.write("\r\x1b[2K" + text)
            self.out.flush()
            self._live = True

    def clear_live(self) -> None:
        if self._live:
            self.out.write("\r\x1b[2K")
            self.out.flush()
            self._live = False

    def verdict(self, status: str) -> str:
        shown = status or "OK"
        return self.colour(f"{shown:<3}", VERDICT_COLOURS.get(status, "31"))

    def execute(self, label: str, entry: dict[str, Any]) -> None:
        meta = entry.get("meta") or {}
        status = meta.get("status", "")
        figures = (
            f"{meta.get('cpu-time-usage', 0)} ms cpu, {meta.get('real-time-usage', 0)} ms real, "
            f"{meta.get('memory-usage', 0)} KiB"
        )
        name = entry.get("name") or ""
        message = meta.get("message") or ""
        head = f"  {self.verdict(status)} {label}{f' {name}' if name else ''}  ({figures})"
        self.line(head + (f": {message}" if status and message else ""))
        record = entry.get("record") or {}
        for stream in ("stdout", "stderr"):
            if record.get(stream):
                text = _decode(record[stream])
                self.line(f"      {stream}:")
                for row in text.rstrip("\n").split("\n"):
                    self.line(f"      | {row}")

    def mission(self, body: dict[str, Any]) -> None:
        state = body.get("state")
        self.line(f"mission {body.get('id')}: {state} (runs: {body.get('runs')})")
        if body.get("error"):
            self.line(f"  error: {body['error']}")
        result = body.get("mission_result")
        if not result:
            return
        for i, entry in enumerate((result.get("prepare") or {}).get("execute") or []):
            self.execute(f"prepare[{i}]", entry)
        for t, task in enumerate(result.get("task") or []):
            for i, entry in enumerate(task.get("execute") or []):
                self.execute(f"task[{t}][{i}]", entry)
        callback = body.get("callback") or {}
        if callback and callback.get("state") != "none":  # "none": a mission without return
            err = f" ({callback['error']})" if callback.get("error") else ""
            self.line(
                f"callback: {callback.get('state')} after {callback.get('attempts')} attempts{err}"
            )


def _statuses(result: dict[str, Any] | None) -> list[str]:
    if not result:
        return []
    entries = list((result.get("prepare") or {}).get("execute") or [])
    for task in result.get("task") or []:
        entries += task.get("execute") or []
    return [str((e.get("meta") or {}).get("status", "")) for e in entries]


def _client(args: argparse.Namespace) -> Client:
    server = args.server or os.environ.get("JUDGE_SERVER") or DEFAULT_SERVER
    token = args.token or os.environ.get("JUDGE_TOKEN", "")
    if not token:
        raise ClientError("a token is required: --token or JUDGE_TOKEN")
    return Client(server, token)


def _exit_code(body: dict[str, Any]) -> int:
    """0 when the mission is done, 1 when it failed or was cancelled."""
    return 0 if body.get("state") == DONE else 1


def poll_for(client: Client, mission_id: int, printer: Printer, timeout_s: float) -> Any:
    """Poll the mission until it reaches a final state; prints each state change."""
    start = time.monotonic()
    deadline = start + timeout_s
    last_state = None
    interval = 0.1
    while True:
        body = client.request("GET", f"/api/missions/{mission_id}")
        state = body.get("state")
        elapsed = time.monotonic() - start
        if state != last_state:
            if not printer.tty:
                printer.line(f"mission {mission_id}: {state} ({elapsed:.1f} s)")
            last_state = state
        printer.live(f"mission {mission_id}: {state} ... {elapsed:.1f} s")
        if state in FINAL_STATES:
            printer.clear_live()
            return body
        if time.monotonic() >= deadline:
            printer.clear_live()
            raise ClientError(f"mission {mission_id} not finished after {timeout_s:g} s ({state})")
        time.sleep(interval)  # polling: a server without an event stream
        interval = min(interval * 1.5, 1.0)


class Progress:
    """What the events told so far: state, executes done of how many, verdicts by kind."""

    BAR_WIDTH = 20

    def __init__(self, mission_id: int) -> None:
        self.mission_id = mission_id
        self.state = QUEUED
        self.total = 0
        self.done = 0
        self.verdicts: dict[str, int] = {}

    def execute(self, data: dict[str, Any]) -> None:
        self.done = int(data.get("n", self.done + 1))
        self.total = max(self.total, int(data.get("executes", 0)))
        status = str((data.get("meta") or {}).get("status", "")) or "OK"
        self.verdicts[status] = self.verdicts.get(status, 0) + 1

    def line(self, elapsed: float) -> str:
        head = f"mission {self.mission_id}: {self.state}"
        if not self.total:
            return f"{head} ... {elapsed:.1f} s"
        filled = self.BAR_WIDTH * self.done // self.total
        bar = "#" * filled + "-" * (self.BAR_WIDTH - filled)
        verdicts = " ".join(f"{k} {n}" for k, n in sorted(self.verdicts.items()))
        return f"{head} [{bar}] {self.done}/{self.total} executes  {verdicts}  {elapsed:.1f} s"


def follow(client: Client, mission_id: int, printer: Printer, timeout_s: float) -> Any:
    """Follow the mission's events until it ends; a live progress bar on a terminal, state
    changes as lines otherwise. Reconnects with ``Last-Event-ID`` when the stream drops; polls
    when the server has no event stream. Returns the mission's final ``GET`` body."""
    start = time.monotonic()
    deadline = start + timeout_s
    progress = Progress(mission_id)
    last_id: str | None = None
    retries = 0
    lost_since: float | None = None  # the server unreachable since (a restart, say)
    while True:
        try:
            for event in client.events(f"/api/missions/{mission_id}/events", last_id):
                elapsed = time.monotonic() - start
                if event is not None:
                    last_id, kind, data = event
                    retries, lost_since = 0, None
                    if kind == "state":
                        progress.state = data.get("state", progress.state)
                        progress.total = int(data.get("executes", progress.total))
                        if progress.state == RUNNING:
                            progress.done, progress.verdicts = 0, {}  # a re-run starts over
                        if not printer.tty:
                            printer.line(
                                f"mission {mission_id}: {progress.state} ({elapsed:.1f} s)"
                            )
                    elif kind == "execute":
                        progress.execute(data)
                    elif kind == "done":
                        printer.clear_live()
                        return client.request("GET", f"/api/missions/{mission_id}")
                printer.live(progress.line(elapsed))
                if time.monotonic() >= deadline:
                    break
        except ClientError as e:
            if e.status in (404, 405) and last_id is None:
                printer.clear_live()  # no event stream on this server: poll
                return poll_for(client, mission_id, printer, deadline - time.monotonic())
            now = time.monotonic()
            lost_since = now if lost_since is None else lost_since
            if e.status is not None or now - lost_since > RECONNECT_FOR_S:
                printer.clear_live()
                raise
            retries += 1
            # The stream dropped (the server restarting?): reconnect, resuming after last_id.
            time.sleep(min(2.0, 0.2 * retries))
        if time.monotonic() >= deadline:
            printer.clear_live()
            raise ClientError(
                f"mission {mission_id} not finished after {timeout_s:g} s ({progress.state})"
            )


def run_cmd(args: argparse.Namespace, out: TextIO) -> int:
    printer = Printer(out)
    try:
        with open(args.file, encoding="utf-8") as f:
            mission = json.load(f)
    except (OSError, ValueError) as e:
        print(f"judge: {args.file}: {e}", file=sys.stderr)
        return 2
    if not isinstance(mission, dict):
        print(f"judge: {args.file}: a mission is a JSON object", file=sys.stderr)
        return 2
    if args.image:
        mission["image"] = args.image
    if args.return_url:
        mission.setdefault("return", {})["url"] = args.return_url
    client = _client(args)
    answer = client.request("POST", "/api/missions/", {"mission": mission})
    mission_id = answer["msg"]["id"]
    if not args.wait:
        if args.json:
            printer.line(json.dumps(answer))
        else:
            printer.line(str(mission_id))
        return 0
    body = follow(client, mission_id, Printer(sys.stderr) if args.json else printer, args.timeout)
    if args.json:
        printer.line(json.dumps(body))
    else:
        printer.mission(body)
        statuses = _statuses(body.get("mission_result"))
        failed = sum(1 for s in statuses if s)
        printer.line(f"{len(statuses) - failed}/{len(statuses)} executes OK")
    return _exit_code(body)


def status_cmd(args: argparse.Namespace, out: TextIO) -> int:
    body = _client(args).request("GET", f"/api/missions/{args.id}")
    if args.json:
        print(json.dumps(body), file=out)
    else:
        Printer(out).mission(body)
    return 0


def cancel_cmd(args: argparse.Namespace, out: TextIO) -> int:
    body = _client(args).request("DELETE", f"/api/missions/{args.id}")
    if args.json:
        print(json.dumps(body), file=out)
    else:
        print(f"mission {body['id']}: {body['state']}", file=out)
    return 0


def images_cmd(args: argparse.Namespace, out: TextIO) -> int:
    body = _client(args).request("GET", "/api/images")
    if args.json:
        print(json.dumps(body), file=out)
        return 0
    for image in body["images"]:
        mark = " (default)" if image.get("default") else ""
        print(f"{image['name']}\t{image.get('toolchain') or '-'}{mark}", file=out)
    return 0


def _client_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", help=f"the server's URL (JUDGE_SERVER; {DEFAULT_SERVER})")
    p.add_argument("--token", help="an API token (JUDGE_TOKEN)")
    p.add_argument("--json", action="store_true", help="print the server's raw JSON")


def _admin_tokens(rest: list[str]) -> int:
    """``judge-admin tokens ...`` of the server installed next to this client, in its own
    process (this package never imports the server); 1 with a message when there is none."""
    if importlib.util.find_spec("service") is None:
        print(
            "judge: 'tokens' administers a server's database; run it where the server is"
            " installed (judge-admin tokens ...)",
            file=sys.stderr,
        )
        return 1
    return subprocess.call([sys.executable, "-m", "service.admin", "tokens", *rest])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="judge", description="judge server tools")
    sub = parser.add_subparsers(dest="command", required=True)
    tok = sub.add_parser("tokens", help="manage API tokens (on the server's host; judge-admin)")
    tok.add_argument("rest", nargs=argparse.REMAINDER, help="add NAME | list | revoke NAME")
    run = sub.add_parser("run", help="submit a mission file to a server")
    run.add_argument("file", help="the mission, a JSON file")
    run.add_argument("--wait", action="store_true", help="wait for the result and print it")
    run.add_argument("--image", help="run with this image (sets the mission's 'image')")
    run.add_argument(
        "--return-url",
        help="the callback URL (sets return.url; without one the mission has no callback)",
    )
    run.add_argument(
        "--timeout", type=float, default=600.0, help="seconds --wait waits at most (600)"
    )
    _client_options(run)
    st = sub.add_parser("status", help="show a mission's state and result")
    st.add_argument("id", type=int)
    _client_options(st)
    cancel = sub.add_parser("cancel", help="cancel a mission")
    cancel.add_argument("id", type=int)
    _client_options(cancel)
    images = sub.add_parser("images", help="list the server's sandbox images")
    _client_options(images)
    args = parser.parse_args(argv)
    clients = {"run": run_cmd, "status": status_cmd, "cancel": cancel_cmd, "images": images_cmd}
    if args.command in clients:
        try:
            return clients[args.command](args, sys.stdout)
        except ClientError as e:
            print(f"judge: {e}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130
    if args.command == "tokens":
        return _admin_tokens(args.rest)
    return 2  # pragma: no cover - argparse rejects other commands


if __name__ == "__main__":
    sys.exit(main())
