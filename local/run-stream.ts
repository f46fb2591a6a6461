import { type IncomingMessage, type Server, STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocket, WebSocketServer } from "ws";
import { authenticate } from "../core/auth.ts";
import type { Deps } from "../core/deps.ts";
import { DomainError, type ErrorCode } from "../core/errors.ts";
import { type RunMessage, runMessages } from "../core/workflow-runs.ts";
import { errorBody, HTTP_STATUS } from "../functions/_shared/errors.ts";
import { authLookups } from "../functions/_shared/http.ts";
import { matchPath } from "../functions/_shared/routes.ts";

/** The live results stream of a workflow run (docs/api.md "Workflows"). */
export const RUN_STREAM_PATH = "/v2/workflows/{id}/runs/{run_id}/stream";

/** How often the local stream looks for new messages, and pings an idle client. */
const POLL_MS = 250;
const PING_MS = 30_000;

/** The API key: `Authorization: Bearer …`, or the subprotocols `key, <key>` (browsers cannot set headers). */
function keyOf(req: IncomingMessage): string | undefined {
  const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "")?.[1]?.trim();
  if (bearer) return bearer;
  const protocols = (req.headers["sec-websocket-protocol"] ?? "").split(",").map((p) => p.trim());
  const at = protocols.indexOf("key");
  return at >= 0 ? protocols[at + 1] : undefined;
}

/** Refuses an upgrade with an HTTP answer in the API's envelope. */
function refuse(socket: Duplex, code: ErrorCode, message: string) {
  const status = HTTP_STATUS[code];
  const body = errorBody(code, message);
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

/**
 * Serves the stream on the local server's upgrades: the key checked and the run's visibility as on every
 * route (another tenant's run is a 404), then every message after `?after=`, then the new ones as the
 * workflows function stores them, until `finish_workflow`, after which it closes. WebSocket pings keep an
 * idle connection alive.
 */
export function serveRunStreams(server: Server, deps: Deps): void {
  const sockets = new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) => (protocols.has("key") ? "key" : false),
  });
  server.on("upgrade", async (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const params = matchPath(RUN_STREAM_PATH, url.pathname);
    if (!params?.id || !params.run_id) return refuse(socket, "1012", `no route for GET ${url.pathname}`);
    const after = Math.max(0, Number.parseInt(url.searchParams.get("after") ?? "0", 10) || 0);
    let backlog: RunMessage[];
    try {
      const principal = await authenticate({ store: authLookups(deps), adminKey: deps.adminKey }, keyOf(req));
      backlog = await runMessages(deps, principal, params.id, params.run_id, after);
    } catch (err) {
      if (!(err instanceof DomainError)) {
        deps.log.error("run stream: could not open", { error: String(err) });
        return refuse(socket, "2001", "internal error");
      }
      return refuse(socket, err.code, err.message);
    }
    sockets.handleUpgrade(req, socket, head, (ws) =>
      stream(deps, ws, params.run_id as string, backlog, after),
    );
  });
}

function stream(deps: Deps, ws: WebSocket, runId: string, backlog: RunMessage[], after: number) {
  let last = after;
  let done = false;
  const send = (messages: RunMessage[]) => {
    for (const { type, seq, data } of messages) {
      if (ws.readyState !== WebSocket.OPEN || done) return;
      ws.send(JSON.stringify({ type, seq, data }));
      last = seq;
      if (type === "finish_workflow") {
        done = true;
        ws.close(1000, "the run has ended");
      }
    }
  };
  send(backlog);
  const poll = setInterval(async () => {
    if (done) return;
    try {
      send(await deps.workflowRuns.listRunMessages(runId, last));
    } catch (err) {
      deps.log.warn("run stream: could not read messages", { run_id: runId, error: String(err) });
    }
  }, POLL_MS);
  const ping = setInterval(() => ws.ping(), PING_MS);
  ws.on("close", () => {
    done = true;
    clearInterval(poll);
    clearInterval(ping);
  });
}
