import middy from "@middy/core";
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from "aws-lambda";
import type * as z from "zod";
import { ANONYMOUS, authenticate, CachedAuthLookups, type Principal, requireScope } from "../../core/auth.ts";
import type { Deps } from "../../core/deps.ts";
import {
  PayloadTooLargeError,
  type RateLimitedError,
  routeNotFound,
  ValidationError,
} from "../../core/errors.ts";
import { RESERVED_KEYS } from "../../core/fields.ts";
import { countRequest } from "../../core/limits.ts";
import { errorResponse } from "./errors.ts";
import { observability } from "./observability.ts";
import type { Route } from "./routes.ts";

/** The API functions' Powertools; `api.count` adds business metrics from a route. */
export const api = observability("switchyard");
export const { logger } = api;

/** Bodies larger than this are refused with 413 before parsing. */
export const MAX_BODY_BYTES = 512 * 1024;

/** What a route's handler gets: the body and query as its schemas parsed them (else as sent). */
export interface RouteRequest<Body = unknown, Query = Record<string, string>> {
  principal: Principal;
  params: Record<string, string>;
  query: Query;
  /** Without a body schema: the parsed JSON body, or undefined when there is none. */
  body: Body;
  /** On a submission route: the refusal of the tenant's submission quota, if it is used up. */
  overQuota?: RateLimitedError;
  /** What comes before the API's paths in the URL the client called: the stage on API Gateway (`/prod`). */
  basePath: string;
}

/** The content types of raw answers (Route.raw): a log's text, a file's bytes. */
export const RAW_CONTENT_TYPES = {
  text: "text/plain; charset=utf-8",
  file: "application/octet-stream",
  document: "application/json",
} as const;

/** A route answers with data for the envelope, or with a raw body (logs, files). */
export type RouteResult =
  /** `beside`: fields of the envelope beside `data` (Route.beside). */
  | { status?: number; data: unknown; beside?: Record<string, unknown> }
  | { status?: number; raw: string | Uint8Array; contentType: string };

export type RouteFn<Body = unknown, Query = Record<string, string>> = (
  deps: Deps,
  request: RouteRequest<Body, Query>,
) => Promise<RouteResult>;

/** A client's text quoted in a message (a field path, a key), cut short: answers stay small. */
const quoted = (text: string, max = 200) => (text.length > max ? `${text.slice(0, max)}…` : text);

/** Parses input with a zod schema; the first issue becomes a 400 / 1001 naming the field. */
export function parse<S extends z.ZodType>(schema: S, input: unknown, where = ""): z.output<S> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = [where, ...(issue?.path ?? []).map(String)].filter(Boolean).join(".") || "body";
  throw new ValidationError(quoted(field), quoted(issue?.message ?? "invalid", 500));
}

const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Walks parsed JSON (iteratively: depth cannot overflow the stack) and refuses prototype-polluting keys
 * and strings or keys that are not valid Unicode (unpaired surrogates, which `\ud800` escapes can carry
 * and which no store or CLI would take back intact), naming the field.
 */
function checkJson(root: unknown): void {
  const stack: { value: unknown; path: string }[] = [{ value: root, path: "" }];
  for (let next = stack.pop(); next; next = stack.pop()) {
    const { value, path } = next;
    const field = path || "body";
    if (typeof value === "string" && LONE_SURROGATE.test(value)) {
      throw new ValidationError(quoted(field), "must be valid Unicode (unpaired surrogate)");
    }
    if (value === null || typeof value !== "object") continue;
    for (const [key, child] of Object.entries(value)) {
      const at = path ? `${path}.${key}` : key;
      if (RESERVED_KEYS.has(key)) throw new ValidationError(quoted(at), "is not an allowed key");
      if (LONE_SURROGATE.test(key)) throw new ValidationError(quoted(at), "must be valid Unicode");
      stack.push({ value: child, path: at });
    }
  }
}

/** The JSON body, or undefined without one; 413 past MAX_BODY_BYTES, 400 when malformed or hostile. */
function parseJsonBody(event: APIGatewayProxyEvent): unknown {
  if (event.body === null || event.body === undefined || event.body === "") return undefined;
  const text = event.isBase64Encoded ? Buffer.from(event.body, "base64").toString("utf8") : event.body;
  if (Buffer.byteLength(text) > MAX_BODY_BYTES) throw new PayloadTooLargeError(MAX_BODY_BYTES);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    // Also a nesting too deep for the parser (a RangeError).
    throw new ValidationError("body", "is not valid JSON");
  }
  checkJson(body);
  return body;
}

/** One cache of API keys and tenants per container (per Deps): core/auth.ts CachedAuthLookups. */
const lookupsByDeps = new WeakMap<Deps, CachedAuthLookups>();

/** The container's cached API-key and tenant lookups (routes that change keys drop entries from it). */
export function authLookups(deps: Deps): CachedAuthLookups {
  let lookups = lookupsByDeps.get(deps);
  if (!lookups) {
    lookups = new CachedAuthLookups(deps.tenants, deps.clock);
    lookupsByDeps.set(deps, lookups);
  }
  return lookups;
}

/** Request headers by lower-case name (API Gateway passes them as the client wrote them). */
export const lowerCaseHeaders = (headers: Record<string, string | undefined> | null | undefined) =>
  Object.fromEntries(Object.entries(headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));

/** The API key a request carries: `Authorization: Bearer …`, else `x-api-key`. */
export function apiKeyOfHeaders(headers: Record<string, string | undefined>): string | undefined {
  const bearer = /^Bearer\s+(.+)$/i.exec(headers.authorization ?? "")?.[1];
  return bearer?.trim() || headers["x-api-key"]?.trim() || undefined;
}

const apiKeyOf = (event: APIGatewayProxyEvent) => apiKeyOfHeaders(lowerCaseHeaders(event.headers));

/** API Gateway's request path includes the stage, the event's path does not: the difference is the base. */
function basePathOf(event: APIGatewayProxyEvent): string {
  const full = event.requestContext?.path ?? event.path;
  return full.endsWith(event.path) ? full.slice(0, full.length - event.path.length) : "";
}

const stringRecord = (values: Record<string, string | undefined> | null) =>
  Object.fromEntries(Object.entries(values ?? {}).map(([k, v]) => [k, v ?? ""]));

function toResponse(result: RouteResult): APIGatewayProxyResult {
  const status = result.status ?? 200;
  if ("raw" in result) {
    const binary = typeof result.raw !== "string";
    return {
      statusCode: status,
      // Files and logs are the client's bytes: never let a browser sniff them into HTML.
      headers: { "content-type": result.contentType, "x-content-type-options": "nosniff" },
      body: binary ? Buffer.from(result.raw).toString("base64") : (result.raw as string),
      isBase64Encoded: binary,
    };
  }
  return {
    statusCode: status,
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      code: "0",
      message: "OK",
      success: true,
      data: result.data ?? null,
      ...result.beside,
    }),
  };
}

/**
 * The Lambda handler of the routes given: authenticate, check the route's scope, parse the body and
 * query with its schemas, call it, wrap the answer in the envelope. Every error becomes an envelope
 * through one mapper (functions/_shared/errors.ts).
 */
export function apiHandler(routes: readonly Route[], getDeps: () => Promise<Deps>) {
  const byKey = new Map(routes.map((route) => [`${route.method} ${route.path}`, route]));
  return middy<APIGatewayProxyEvent, APIGatewayProxyResult, Error, Context>()
    .use(api.middlewares)
    .use({
      onError: (request) => {
        request.response = errorResponse(request.error, logger);
      },
    })
    .handler(async (event) => {
      const route = byKey.get(`${event.httpMethod} ${event.resource}`);
      if (!route) throw routeNotFound(event.httpMethod, event.path);
      const deps = await getDeps();
      const principal = route.public
        ? ANONYMOUS
        : await authenticate({ store: authLookups(deps), adminKey: deps.adminKey }, apiKeyOf(event));
      // Before the body is even parsed, so that malformed and refused requests count too. One store write
      // per tenant request (core/limits.ts); the admin key and public routes are not counted.
      const overQuota = await countRequest(deps, principal, route.submission);
      // A key that may not use the route learns nothing about what it sent.
      if (route.scope) requireScope(principal, route.scope);
      const json = parseJsonBody(event);
      const query = stringRecord(event.queryStringParameters);
      const request = {
        principal,
        params: stringRecord(event.pathParameters),
        query: route.query ? parse(route.query, query) : query,
        body: route.body ? parse(route.body, json ?? {}) : json,
        overQuota,
        basePath: basePathOf(event),
      };
      return toResponse(await route.handler(deps, request));
    });
}
