import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from "aws-lambda";
import type { Deps } from "../core/deps.ts";
import { staticFiles } from "../dashboard/build.ts";
import { errorBody } from "../functions/_shared/errors.ts";
import { apiHandler, MAX_BODY_BYTES } from "../functions/_shared/http.ts";
import { matchPath, ROUTES } from "../functions/_shared/routes.ts";
import { streamConnectHandler } from "../functions/run-stream.ts";
import { type LocalStreamSockets, serveRunStreams } from "./run-stream.ts";
import { answerSocket } from "./socket-answer.ts";
import { lambdaContext } from "./sqs-event-source.ts";

type LambdaHandler = (event: APIGatewayProxyEvent, context: Context) => Promise<APIGatewayProxyResult>;

/**
 * The request target as a URL: origin-form (`/v2/tasks?x`) kept as sent, so `//v2` stays a path and
 * never becomes a host; undefined for a target that is not a URL at all.
 */
function requestUrl(target = "/"): URL | undefined {
  try {
    return new URL(target.startsWith("/") ? `http://localhost${target}` : target);
  } catch {
    return undefined;
  }
}

/** Reads the body, stopping early past the limit (the handler then answers 413). */
async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    chunks.push(chunk as Buffer);
    if (size > MAX_BODY_BYTES) break;
  }
  return Buffer.concat(chunks);
}

/** Turns one HTTP request into the API Gateway (REST, proxy) event the real Lambda receives. */
function toEvent(
  req: IncomingMessage,
  url: URL,
  body: Buffer,
  resource: string,
  params: Record<string, string>,
) {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers))
    if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(",") : v;
  const query = Object.fromEntries(url.searchParams);
  return {
    resource,
    path: url.pathname,
    httpMethod: req.method ?? "GET",
    headers,
    multiValueHeaders: {},
    queryStringParameters: Object.keys(query).length ? query : null,
    multiValueQueryStringParameters: null,
    pathParameters: Object.keys(params).length ? params : null,
    stageVariables: null,
    requestContext: { requestId: randomUUID(), stage: "local" },
    body: body.length ? body.toString("base64") : null,
    isBase64Encoded: body.length > 0,
  } as unknown as APIGatewayProxyEvent;
}

/**
 * The local API: the route table, each route served by the very same middy handler as on Lambda.
 * A path no route matches still reaches a handler, which answers the 404 envelope.
 */
export async function startHttpServer(
  deps: Deps,
  port: number,
  streams: LocalStreamSockets,
): Promise<{ url: string; server: Server }> {
  const handler = apiHandler(ROUTES, async () => deps) as LambdaHandler;
  const files = staticFiles();
  const server = createServer(async (req, res) => {
    try {
      const url = requestUrl(req.url);
      const body = await readBody(req);
      if (!url) {
        res.writeHead(400, { "content-type": "application/json" });
        res.end(errorBody("1001", "path: not a valid request target"));
        return;
      }
      const file =
        req.method === "GET" && Object.hasOwn(files, url.pathname) ? files[url.pathname] : undefined;
      if (file) {
        const headers = {
          "content-type": file.contentType,
          "x-content-type-options": "nosniff",
          ...file.headers,
        };
        res.writeHead(200, headers);
        res.end(await readFile(file.path));
        return;
      }
      let target = { group: "health", resource: url.pathname, params: {} };
      for (const route of ROUTES) {
        const params = route.method === req.method ? matchPath(route.path, url.pathname) : undefined;
        if (params) {
          target = { group: route.group, resource: route.path, params };
          break;
        }
      }
      const result = await handler(
        toEvent(req, url, body, target.resource, target.params),
        lambdaContext(`switchyard-${target.group}`),
      );
      res.writeHead(result.statusCode, result.headers as Record<string, string>);
      res.end(result.isBase64Encoded ? Buffer.from(result.body, "base64") : result.body);
    } catch (err) {
      res.writeHead(500, { "content-type": "application/json" });
      res.end(JSON.stringify({ code: "2001", message: "internal error", success: false, data: null }));
      deps.log.error("local server error", { error: String(err) });
    }
  });
  // What Node's HTTP parser refuses (headers past its 16 KB, a malformed request line) never reaches a
  // handler; answer it in the envelope too, as API Gateway's gateway responses do on AWS.
  server.on("clientError", (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const tooLarge = err.code === "HPE_HEADER_OVERFLOW";
    const status = tooLarge ? 431 : 400;
    const body = tooLarge
      ? errorBody("1011", "headers: too large")
      : errorBody("1001", "request: not valid HTTP");
    answerSocket(socket, status, body);
  });
  // The workflow runs' live results, as the API Gateway WebSocket API serves them on AWS.
  serveRunStreams(
    server,
    streams,
    streamConnectHandler(async () => deps),
  );
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  const address = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${address.port}`, server };
}
