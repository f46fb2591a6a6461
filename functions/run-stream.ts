import middy from "@middy/core";
import type { Context } from "aws-lambda";
import { authenticate } from "../core/auth.ts";
import type { Deps } from "../core/deps.ts";
import { DomainError, ERROR_CODES, ValidationError } from "../core/errors.ts";
import { openRunStream } from "../core/workflow-runs.ts";
import { lambdaDeps } from "./_shared/composition.ts";
import { errorBody, HTTP_STATUS } from "./_shared/errors.ts";
import { apiKeyOfHeaders, authLookups, lowerCaseHeaders } from "./_shared/http.ts";
import { observability } from "./_shared/observability.ts";

const { logger, middlewares } = observability("switchyard-run-stream");

/** What API Gateway gives a WebSocket API's `$connect` route (and the local server's upgrade likewise). */
export interface StreamConnectEvent {
  headers?: Record<string, string | undefined> | null;
  queryStringParameters?: Record<string, string | undefined> | null;
  requestContext: { connectionId: string; routeKey?: string };
}

export interface StreamConnectResult {
  statusCode: number;
  headers?: Record<string, string>;
  body?: string;
}

/**
 * The API key: as on every route (`Authorization: Bearer …`, `x-api-key`), or the subprotocols
 * `key, <key>` (a browser cannot set headers; the answer then names the `key` subprotocol, as the
 * WebSocket handshake requires).
 */
function keyOf(headers: Record<string, string | undefined>): { key?: string; protocol?: string } {
  const key = apiKeyOfHeaders(headers);
  if (key) return { key };
  const protocols = (headers["sec-websocket-protocol"] ?? "").split(",").map((p) => p.trim());
  const at = protocols.indexOf("key");
  return at >= 0 ? { key: protocols[at + 1], protocol: "key" } : {};
}

/**
 * A connection opening on a run's stream: `?workflow_id=&run_id=&after=` (the local server passes its
 * path's ids so). The key and the run's visibility are checked as on every route (another tenant's run
 * is a 404, before the connection opens); then the connection is kept with the run and is sent what it
 * missed once it is open (core/run-stream.ts).
 */
export function streamConnectHandler(getDeps: () => Promise<Deps>) {
  return middy<StreamConnectEvent, StreamConnectResult, Error, Context>()
    .use(middlewares)
    .handler(async (event) => {
      const headers = lowerCaseHeaders(event.headers);
      const query = event.queryStringParameters ?? {};
      const { key, protocol } = keyOf(headers);
      try {
        const deps = await getDeps();
        const principal = await authenticate({ store: authLookups(deps), adminKey: deps.adminKey }, key);
        const after = Number(query.after ?? 0);
        if (!Number.isInteger(after) || after < 0)
          throw new ValidationError("after", "must be a seq (0 or more)");
        await openRunStream(deps, principal, {
          workflowId: query.workflow_id ?? "",
          runId: query.run_id ?? "",
          connectionId: event.requestContext.connectionId,
          after,
        });
        return { statusCode: 200, ...(protocol && { headers: { "Sec-WebSocket-Protocol": protocol } }) };
      } catch (err) {
        if (err instanceof DomainError) {
          return { statusCode: HTTP_STATUS[err.code], body: errorBody(err.code, err.message) };
        }
        logger.error("run stream: could not open", { error: String(err) });
        return { statusCode: 500, body: errorBody(ERROR_CODES.system, "internal error") };
      }
    });
}

export const handler = streamConnectHandler(() => lambdaDeps());
