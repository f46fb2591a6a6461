import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { compileErrors, validate } from "@readme/openapi-parser";
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from "aws-lambda";
import { describe, expect, it } from "vitest";
import { RUN_STREAM_PATH } from "../../core/run-stream.ts";
import { apiHandler } from "../../functions/_shared/http.ts";
import {
  apiDocumentText,
  openApiDocument,
  openApiPath,
  operationIdOf,
} from "../../functions/_shared/openapi.ts";
import { ROUTES } from "../../functions/_shared/routes.ts";
import { memoryDeps } from "../support/memory-deps.ts";

type Operation = { operationId: string; responses: Record<string, { description: string }> } & Record<
  string,
  unknown
>;
const document = openApiDocument(ROUTES) as { paths: Record<string, Record<string, Operation>> };
const operations = Object.entries(document.paths).flatMap(([path, methods]) =>
  Object.entries(methods).map(([method, operation]) => ({
    key: `${method.toUpperCase()} ${path}`,
    operation,
  })),
);
const operationOf = (method: string, path: string) =>
  document.paths[path]?.[method.toLowerCase()] as Operation;

describe("the OpenAPI document", () => {
  it("is a valid OpenAPI 3.1 document", async () => {
    const result = await validate(structuredClone(document) as never);
    expect(result.valid, result.valid ? "" : compileErrors(result)).toBe(true);
  });

  it("has one operation per route of the table, and the run stream's WebSocket, and no other", () => {
    const routes = ROUTES.map((route) => `${route.method} ${openApiPath(route.path)}`);
    expect(operations.map((o) => o.key).sort()).toEqual([...routes, `GET ${RUN_STREAM_PATH}`].sort());
    expect(operationOf("GET", RUN_STREAM_PATH).responses[101]?.description).toMatch(/WebSocket/);
    const ids = ROUTES.map(operationIdOf);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("gives each route's body, query and path parameters from the schemas the handlers parse with", () => {
    const submit = operationOf("POST", "/v2/tasks");
    const body = (submit.requestBody as { content: Record<string, { schema: { properties: object } }> })
      .content["application/json"]?.schema;
    expect(Object.keys(body?.properties ?? {})).toEqual(
      expect.arrayContaining(["prompt", "tool", "priority"]),
    );
    const list = operationOf("GET", "/v2/tasks").parameters as { name: string; in: string }[];
    expect(list.filter((p) => p.in === "query").map((p) => p.name)).toEqual(
      expect.arrayContaining(["status", "pool", "size"]),
    );
    const file = operationOf("GET", "/v2/tasks/{uuid}/files/{path}").parameters as { name: string }[];
    expect(file.map((p) => p.name)).toEqual(["uuid", "path"]);
  });

  it("names the error codes each route can answer, and the auth it needs", () => {
    const submit = operationOf("POST", "/v2/tasks");
    expect(Object.keys(submit.responses).sort()).toEqual(
      ["200", "201", "400", "401", "403", "409", "413", "429", "500", "503"].sort(),
    );
    expect(submit.responses["429"]?.description).toMatch(/^1010: /);
    expect(operationOf("GET", "/v2/tasks/{uuid}").responses["404"]?.description).toMatch(/^1002: /);
    expect(operationOf("GET", "/v2/instances/{run_id}").responses["404"]?.description).toMatch(/^1003: /);
    const health = operationOf("GET", "/v2/health");
    expect([health.security, Object.keys(health.responses)]).toEqual([[], ["200", "500", "503"]]);
    expect(submit.security).toEqual([{ bearer: [] }, { apiKey: [] }]);
  });

  it("is written to docs/openapi.json as served (npm run openapi)", () => {
    const written = readFileSync(resolve(import.meta.dirname, "../../docs/openapi.json"), "utf8");
    expect(written, "docs/openapi.json is stale: run npm run openapi").toBe(apiDocumentText(ROUTES));
  });
});

describe("GET /v2/openapi.json on API Gateway", () => {
  it("points its server at the stage the client called, so that Try it reaches the deployment", async () => {
    const { deps } = memoryDeps("pools:\n  - { name: p, tool: claude, account: a, max_concurrency: 1 }\n");
    const handler = apiHandler(ROUTES, async () => deps);
    const event = {
      resource: "/v2/openapi.json",
      path: "/v2/openapi.json",
      httpMethod: "GET",
      headers: {},
      requestContext: { path: "/prod/v2/openapi.json", stage: "prod" },
      body: null,
      isBase64Encoded: false,
    } as unknown as APIGatewayProxyEvent;
    const answer = (await handler(event, {} as Context)) as APIGatewayProxyResult;
    expect([answer.statusCode, JSON.parse(answer.body).servers]).toEqual([200, [{ url: "/prod" }]]);
  });
});
