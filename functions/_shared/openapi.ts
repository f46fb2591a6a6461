/**
 * The OpenAPI 3.1 document of the API, built from the route table and its zod schemas (zod's own JSON
 * Schema output), so that it cannot drift from what the handlers accept. Served at GET /v2/openapi.json and
 * written by `npm run openapi`.
 */
import * as z from "zod";
import { ERROR_CODES, type ErrorCode } from "../../core/errors.ts";
import { RUN_STREAM_PATH } from "../../core/run-stream.ts";
import { NAMED_ANSWERS } from "./answers.ts";
import { HTTP_STATUS } from "./errors.ts";
import { RAW_CONTENT_TYPES } from "./http.ts";
import type { Route } from "./routes.ts";

type JsonSchema = Record<string, unknown>;

/** A route's path as OpenAPI writes it: a greedy `{path+}` is a plain parameter whose value holds slashes. */
export const openApiPath = (path: string) => path.replace(/\{(\w+)\+\}/g, "{$1}");

/** The operation id of a route: its group and its handler, e.g. `tasks.submit`. */
export const operationIdOf = (route: Route) => `${route.group}.${route.handler.name}`;

/** A zod schema as JSON Schema 2020-12 (what OpenAPI 3.1 speaks), on the input side: what a client sends. */
function jsonSchemaOf(schema: z.ZodType): JsonSchema {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" });
  return rest;
}

/** An answer's schema, on the output side, its named parts as references to the document's components. */
function answerSchemaOf(schema: z.ZodType): JsonSchema {
  const {
    $schema: _,
    $defs: __,
    ...rest
  } = z.toJSONSchema(schema, {
    io: "output",
    unrepresentable: "any",
    metadata: NAMED_ANSWERS,
  });
  return JSON.parse(JSON.stringify(rest).replaceAll('"#/$defs/', '"#/components/schemas/'));
}

/** The named answer schemas (Task, Run), as components. */
const namedAnswers = () =>
  (z.toJSONSchema(NAMED_ANSWERS, {
    io: "output",
    unrepresentable: "any",
    uri: (id) => `#/components/schemas/${id}`,
  }).schemas ?? {}) as Record<string, JsonSchema>;

/**
 * What a path parameter names, and the code answered when no such thing exists (for the caller); a
 * `group.param` entry is that group's own meaning of the name.
 */
const PATH_PARAMETERS: Record<string, { description: string; notFound?: ErrorCode }> = {
  uuid: { description: "the task's uuid", notFound: ERROR_CODES.taskNotFound },
  run_id: { description: "the run's id (an instance of the task)", notFound: ERROR_CODES.runNotFound },
  name: { description: "the pool's name", notFound: ERROR_CODES.poolNotFound },
  "templates.name": { description: "the template's name", notFound: ERROR_CODES.templateNotFound },
  id: { description: "the tenant's id", notFound: ERROR_CODES.tenantNotFound },
  key_id: { description: "the API key's id", notFound: ERROR_CODES.tenantNotFound },
  path: { description: "the file's path under the task's output, slashes included" },
};

const pathParameter = (route: Route, name: string) =>
  PATH_PARAMETERS[`${route.group}.${name}`] ?? PATH_PARAMETERS[name];

const ERROR_MEANINGS: Partial<Record<ErrorCode, string>> = {
  [ERROR_CODES.validation]: "a parameter is wrong: the message names the field and the reason",
  [ERROR_CODES.taskNotFound]: "no such task (or not the caller's)",
  [ERROR_CODES.runNotFound]: "no such run (or not the caller's)",
  [ERROR_CODES.poolNotFound]: "no such pool",
  [ERROR_CODES.insufficientResources]: "no pool can take it, or a quota of queued tasks is reached",
  [ERROR_CODES.conflict]: "the change conflicts with the current state (a transition, an idempotency key)",
  [ERROR_CODES.unauthorized]: "the API key is missing or not valid",
  [ERROR_CODES.forbidden]: "the key lacks the route's scope",
  [ERROR_CODES.rateLimited]: "a rate limit or quota of the tenant: retry after `Retry-After` seconds",
  [ERROR_CODES.payloadTooLarge]: "the body is too large",
  [ERROR_CODES.tenantNotFound]: "no such tenant or API key",
  [ERROR_CODES.templateNotFound]: "no such template, or revision (or not the caller's)",
  [ERROR_CODES.workflowNotFound]: "no such workflow, or run of it (or not the caller's)",
  [ERROR_CODES.system]: "an internal error (nothing of it is answered)",
  [ERROR_CODES.database]: "the database is busy: retry",
};

/** The error codes a route can answer, from what it is: its inputs, its scope, what it changes. */
function errorCodesOf(route: Route): ErrorCode[] {
  const params = pathParametersOf(route.path);
  const codes: ErrorCode[] = [];
  if (route.body || route.query || params.length > 0) codes.push(ERROR_CODES.validation);
  for (const param of params) {
    const notFound = pathParameter(route, param)?.notFound;
    if (notFound && !codes.includes(notFound)) codes.push(notFound);
  }
  if (route.submission) codes.push(ERROR_CODES.insufficientResources);
  if (route.method !== "GET") codes.push(ERROR_CODES.conflict);
  if (!route.public) codes.push(ERROR_CODES.unauthorized, ERROR_CODES.rateLimited);
  if (route.scope) codes.push(ERROR_CODES.forbidden);
  if (route.body) codes.push(ERROR_CODES.payloadTooLarge);
  codes.push(ERROR_CODES.system, ERROR_CODES.database);
  return codes;
}

const pathParametersOf = (path: string) => [...path.matchAll(/\{(\w+)\+?\}/g)].map((m) => m[1] as string);

/** The envelopes every JSON answer comes in (components.schemas). */
const ENVELOPES: Record<string, JsonSchema> = {
  Envelope: {
    type: "object",
    required: ["code", "message", "success", "data"],
    properties: {
      code: { const: "0" },
      message: { const: "OK" },
      success: { const: true },
      data: { description: "the answer (see the route)" },
    },
  },
  Error: {
    type: "object",
    required: ["code", "message", "success", "data"],
    properties: {
      code: { type: "string", enum: Object.values(ERROR_CODES), description: "see the route's answers" },
      message: { type: "string", description: "what was wrong, naming the field when one was" },
      success: { const: false },
      data: { type: "null" },
    },
  },
};
const envelopeRef = (name: keyof typeof ENVELOPES) => ({ $ref: `#/components/schemas/${name}` });

const RETRY_AFTER = {
  "Retry-After": { description: "seconds until the limit's window ends", schema: { type: "integer" } },
};

/** Error answers, one per HTTP status, each listing its codes. */
function errorAnswers(codes: ErrorCode[]): Record<string, unknown> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) {
    const status = HTTP_STATUS[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return Object.fromEntries(
    [...byStatus].map(([status, codes]) => [
      String(status),
      {
        description: codes.map((code) => `${code}: ${ERROR_MEANINGS[code] ?? "error"}`).join("; "),
        ...(status === 429 && { headers: RETRY_AFTER }),
        content: { "application/json": { schema: envelopeRef("Error") } },
      },
    ]),
  );
}

const RAW_CONTENT = {
  text: { [RAW_CONTENT_TYPES.text]: { schema: { type: "string" } } },
  file: {
    [RAW_CONTENT_TYPES.file]: { schema: { type: "string", contentMediaType: RAW_CONTENT_TYPES.file } },
  },
  document: { [RAW_CONTENT_TYPES.document]: { schema: { type: "object" } } },
};

function successResponses(route: Route): Record<string, unknown> {
  const beside = route.beside ? (answerSchemaOf(route.beside) as { properties: object }).properties : {};
  const envelope = route.answer
    ? {
        allOf: [
          envelopeRef("Envelope"),
          { type: "object", properties: { data: answerSchemaOf(route.answer), ...beside } },
        ],
      }
    : envelopeRef("Envelope");
  const content = route.raw ? RAW_CONTENT[route.raw] : { "application/json": { schema: envelope } };
  if (!route.creates) return { 200: { description: "done", content } };
  const replay = route.submission
    ? { 200: { description: "an idempotent replay: the task stored before", content } }
    : {};
  return { 201: { description: "created", content }, ...replay };
}

function parametersOf(route: Route): unknown[] {
  const path = pathParametersOf(route.path).map((name) => ({
    name,
    in: "path",
    required: true,
    description: pathParameter(route, name)?.description ?? name,
    schema: { type: "string" },
  }));
  if (!route.query) return path;
  const query = jsonSchemaOf(route.query) as { properties?: Record<string, JsonSchema>; required?: string[] };
  return [
    ...path,
    ...Object.entries(query.properties ?? {}).map(([name, schema]) => ({
      name,
      in: "query",
      required: query.required?.includes(name) ?? false,
      ...(typeof schema.description === "string" && { description: schema.description }),
      schema,
    })),
  ];
}

const SECURITY_SCHEMES = {
  bearer: { type: "http", scheme: "bearer", description: "an API key as `Authorization: Bearer <key>`" },
  apiKey: { type: "apiKey", in: "header", name: "x-api-key", description: "an API key in `x-api-key`" },
};

function operationOf(route: Route): Record<string, unknown> {
  const parameters = parametersOf(route);
  return {
    operationId: operationIdOf(route),
    summary: route.summary,
    tags: [route.group],
    ...(route.scope && { description: `Needs a key with the \`${route.scope}\` scope.` }),
    security: route.public ? [] : [{ bearer: [] }, { apiKey: [] }],
    ...(parameters.length > 0 && { parameters }),
    ...(route.body && {
      requestBody: { required: true, content: { "application/json": { schema: jsonSchemaOf(route.body) } } },
    }),
    responses: { ...successResponses(route), ...errorAnswers(errorCodesOf(route)) },
  };
}

/** A frame of a run's live results stream. */
const runStreamFrame = z.object({
  type: z.enum(["start_task", "finish_task", "finish_workflow"]),
  seq: z.number().int().min(1).describe("from 1 in the run, with no gap; a client drops one it has had"),
  data: z
    .record(z.string(), z.unknown())
    .describe(
      "start_task {name, task_uuid}; finish_task {name, status, task_uuid, outputs, error}; " +
        "finish_workflow {run_id, status, nodes_failed}",
    ),
});

/** The run stream's WebSocket, documented as the GET that upgrades (no route of the table serves it). */
const RUN_STREAM_OPERATION = {
  operationId: "workflows.stream",
  summary: "A workflow run's live results: a WebSocket",
  description:
    "Upgrade to a WebSocket (the key as on every route, or as the subprotocols `key, <key>`), then " +
    "read frames: every message after `after`, then each new one, until `finish_workflow`, after which it " +
    "closes. On AWS the stream is an API Gateway WebSocket API: open the run's `stream_url` (POST or GET of " +
    "the run), which names it with the ids in its query; ping within 10 minutes of quiet, and reconnect with " +
    "`after` at its 2-hour limit. Needs a key with the `tasks:read` scope.",
  tags: ["workflows"],
  security: [{ bearer: [] }, { apiKey: [] }],
  parameters: [
    { name: "id", in: "path", required: true, description: "the workflow's id", schema: { type: "string" } },
    { name: "run_id", in: "path", required: true, description: "the run's id", schema: { type: "string" } },
    {
      name: "after",
      in: "query",
      required: false,
      description: "the seq of the last message the client has: only later ones are sent",
      schema: { type: "integer", minimum: 0 },
    },
  ],
  responses: {
    101: {
      description: "switching to the WebSocket; each frame is one message",
      content: { "application/json": { schema: jsonSchemaOf(runStreamFrame) } },
    },
    ...errorAnswers([
      ERROR_CODES.validation,
      ERROR_CODES.unauthorized,
      ERROR_CODES.forbidden,
      ERROR_CODES.workflowNotFound,
    ]),
  },
};

/**
 * The document for `routes`. `serverUrl` is where the API is reached from the document's reader: the
 * stage's base path on API Gateway ("/prod"), "/" locally.
 */
export function openApiDocument(routes: readonly Route[], serverUrl = "/"): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const path = openApiPath(route.path);
    paths[path] = { ...paths[path], [route.method.toLowerCase()]: operationOf(route) };
  }
  paths[RUN_STREAM_PATH] = { get: RUN_STREAM_OPERATION };
  return {
    openapi: "3.1.0",
    info: {
      title: "Switchyard",
      version: "2",
      description:
        "A job scheduler for LLM coding-agent CLIs and container jobs. Every answer but logs, files and this " +
        'document is an envelope `{code, message, success, data}`; `code` is "0" on success.',
    },
    servers: [{ url: serverUrl }],
    tags: [...new Set(routes.map((r) => r.group))].map((name) => ({ name })),
    paths,
    components: {
      schemas: { ...ENVELOPES, ...withoutIds(namedAnswers()) },
      securitySchemes: SECURITY_SCHEMES,
    },
  };
}

/** The document as text, as it is served and written to docs/openapi.json. */
export const apiDocumentText = (routes: readonly Route[], serverUrl?: string) =>
  `${JSON.stringify(openApiDocument(routes, serverUrl), null, 2)}\n`;

/** Components as OpenAPI wants them: no `$schema` or `$id` of their own. */
const withoutIds = (schemas: Record<string, JsonSchema>) =>
  Object.fromEntries(
    Object.entries(schemas).map(([name, { $schema: _, $id: __, ...schema }]) => [name, schema]),
  );
