import { randomBytes } from "node:crypto";
import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocket, WebSocketServer } from "ws";
import { ERROR_CODES } from "../core/errors.ts";
import type { StreamConnections } from "../core/ports.ts";
import { RUN_STREAM_PATH } from "../core/run-stream.ts";
import { errorBody } from "../functions/_shared/errors.ts";
import { matchPath } from "../functions/_shared/routes.ts";
import type { StreamConnectEvent, StreamConnectResult } from "../functions/run-stream.ts";
import { answerSocket } from "./socket-answer.ts";
import { lambdaContext } from "./sqs-event-source.ts";

/** An idle client is pinged this often (API Gateway closes a connection idle for 10 minutes). */
const PING_MS = 30_000;

/**
 * The local server's WebSocket connections, as API Gateway keeps them: frames sent by connection id
 * (what the management API does on AWS).
 */
export class LocalStreamSockets implements StreamConnections {
  readonly #sockets = new Map<string, WebSocket>();

  add(connectionId: string, ws: WebSocket): void {
    this.#sockets.set(connectionId, ws);
    const ping = setInterval(() => ws.ping(), PING_MS);
    ws.on("close", () => {
      clearInterval(ping);
      this.#sockets.delete(connectionId);
    });
  }

  async send(connectionId: string, frame: string): Promise<boolean> {
    const ws = this.#sockets.get(connectionId);
    if (ws?.readyState !== WebSocket.OPEN) return false;
    await new Promise<void>((done, fail) => ws.send(frame, (err) => (err ? fail(err) : done())));
    return true;
  }

  async close(connectionId: string): Promise<void> {
    this.#sockets.get(connectionId)?.close(1000, "the run has ended");
  }
}

/**
 * Serves runs' streams on the local server's upgrades as API Gateway's WebSocket API does: each upgrade
 * of the stream's path is the `$connect` of the same handler (functions/run-stream.ts), with the path's
 * ids as the query; the connection opens only if it answers 200.
 */
export function serveRunStreams(
  server: Server,
  sockets: LocalStreamSockets,
  connect: (
    event: StreamConnectEvent,
    context: ReturnType<typeof lambdaContext>,
  ) => Promise<StreamConnectResult>,
): void {
  const upgrades = new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) => (protocols.has("key") ? "key" : false),
  });
  server.on("upgrade", async (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const params = matchPath(RUN_STREAM_PATH, url.pathname);
    if (!params?.id || !params.run_id) {
      return answerSocket(
        socket,
        404,
        errorBody(ERROR_CODES.routeNotFound, `no route for GET ${url.pathname}`),
      );
    }
    const connectionId = randomBytes(9).toString("base64");
    const headers = Object.fromEntries(
      Object.entries(req.headers).map(([name, value]) => [
        name,
        Array.isArray(value) ? value.join(",") : value,
      ]),
    );
    const answer = await connect(
      {
        headers,
        queryStringParameters: {
          ...Object.fromEntries(url.searchParams),
          workflow_id: params.id,
          run_id: params.run_id,
        },
        requestContext: { connectionId, routeKey: "$connect" },
      },
      lambdaContext("switchyard-run-stream"),
    );
    if (answer.statusCode !== 200) return answerSocket(socket, answer.statusCode, answer.body ?? "");
    upgrades.handleUpgrade(req, socket, head, (ws) => sockets.add(connectionId, ws));
  });
}
