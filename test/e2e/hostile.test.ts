/**
 * Property-based abuse of the whole API on one local stack: generated hostile bodies, headers, query
 * strings and path parameters against every route of ROUTES. Every answer must be a 4xx envelope with a
 * code, or a success; never a 5xx. Afterwards the store must hold no half-written item.
 *
 * Deterministic: each route's property has a fixed seed (SEED + its index). Runs in well under a minute.
 */
import { Agent, type IncomingHttpHeaders, request } from "node:http";
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { paginateScan } from "@aws-sdk/lib-dynamodb";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { slotOf } from "../../core/admission.ts";
import { TOOLS } from "../../core/fields.ts";
import { blobKeys } from "../../core/identifiers.ts";
import type { Run, Task } from "../../core/records.ts";
import { ACTIVE_STATUSES, RUN_STATUSES, TASK_STATUSES, TERMINAL_STATUSES } from "../../core/status.ts";
import { MAX_BODY_BYTES } from "../../functions/_shared/http.ts";
import { ROUTES, type Route } from "../../functions/_shared/routes.ts";
import { startTestStack, type TestStack } from "../support/stack.ts";

const CONFIG = `
concurrency_limits: { "tool:claude": 2 }
pools:
  - { name: main, tool: claude, account: main, max_concurrency: 3 }
  - { name: cx, tool: codex, account: main, max_concurrency: 1 }
`;
const SEED = 7_2026;
/** Generated requests per route (POST /v2/tasks, the richest, gets SUBMIT_RUNS). */
const RUNS_PER_ROUTE = 100;
const SUBMIT_RUNS = 400;
/** Route properties run at once (each one's requests are sequential). */
const PARALLEL_ROUTES = 7;

let stack: TestStack;
let stopped = false;
const agent = new Agent({ keepAlive: true, maxSockets: 32 });

/** Real ids, so that generated requests reach past the lookups, next to the generated hostile ones. */
const ids: Record<string, string[]> = {};
const keys = { admin: "", fuzz: "", reader: "", revoked: "" };

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One raw HTTP request: the path is sent exactly as given (fetch would normalize `..` and escapes). */
function send(method: string, path: string, headers: Record<string, string>, body?: Buffer): Promise<Answer> {
  const url = new URL(stack.url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        method,
        path,
        headers: { ...headers, ...(body ? { "content-length": String(body.length) } : {}) },
        // A body the server stops reading past its limit spoils the connection for the next request.
        agent: body && body.length > MAX_BODY_BYTES ? false : agent,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** Answers by route and status, for the summary and the coverage checks. */
const tally = new Map<string, Map<number, number>>();
function count(route: string, status: number) {
  const byStatus = tally.get(route) ?? new Map<number, number>();
  byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
  tally.set(route, byStatus);
}

/** What an answer must never show: stack frames, source paths, error classes, the stack's resource names. */
const LEAKS = /\n\s+at |node_modules|\.ts:\d+|Exception|TypeError|ReferenceError|SyntaxError|RangeError/;
const leaks = (message: string) =>
  LEAKS.test(message) ||
  [stack.resources.tableName, stack.resources.bucketName].some((name) => message.includes(name));

/** What every answer must be: a 4xx envelope with a code and a clean message, or a success. */
function checkAnswer(route: Route | undefined, answer: Answer): void {
  const where = `${route?.method ?? "?"} ${route?.path ?? "?"} answered ${answer.status}`;
  if (answer.status >= 500 || answer.status < 200) throw new Error(`${where}: ${answer.body.toString()}`);
  const type = String(answer.headers["content-type"] ?? "");
  if (answer.status >= 300) {
    if (!type.includes("application/json")) throw new Error(`${where} without a JSON envelope`);
    const envelope = JSON.parse(answer.body.toString()) as Record<string, unknown>;
    const { code, message, success, data } = envelope;
    if (typeof code !== "string" || !/^[12]\d{3}$/.test(code) || success !== false || data !== null) {
      throw new Error(`${where} with a malformed envelope: ${answer.body.toString().slice(0, 300)}`);
    }
    if (typeof message !== "string" || message === "" || leaks(message)) {
      throw new Error(`${where} with a message that leaks or says nothing: ${String(message).slice(0, 300)}`);
    }
    if (code === "1010" && !answer.headers["retry-after"])
      throw new Error(`${where}: 429 without Retry-After`);
    return;
  }
  if (type.includes("application/json") && !route?.raw) {
    const envelope = JSON.parse(answer.body.toString()) as Record<string, unknown>;
    if (envelope.success !== true || envelope.code !== "0")
      throw new Error(`${where}: not a success envelope`);
  } else if (!route?.raw) {
    throw new Error(`${where} with ${type}, not an envelope`);
  }
}

// ---------- generators ----------

/** Percent-encodes the UTF-8 bytes of a string (a lone surrogate becomes U+FFFD, as a client would send it). */
const enc = (value: string) =>
  [...Buffer.from(value, "utf8")]
    .map((byte) => {
      const char = String.fromCharCode(byte);
      return /[A-Za-z0-9._~-]/.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
    })
    .join("");

const NASTY = [
  "",
  " ",
  ".",
  "..",
  "../..",
  "../../etc/passwd",
  "a/../b",
  "/abs/path",
  "\\\\server\\share",
  "C:\\Windows",
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "hasOwnProperty",
  "%00",
  "\u0000",
  "nul\u0000byte",
  "bell\u0007",
  "del\u007f",
  "c1\u0085",
  "\u202eevil.txt",
  "iso\u2066late",
  "\ud800",
  "\udfff",
  "pair\ud83d\ude00ok",
  "😀".repeat(70),
  "e\u0301",
  "\u200b\u200d",
  "\ufeffbom",
  "\ufffe",
  "İ",
  "ß",
  "\r\n",
  "line\nbreak",
  "'; DROP TABLE tasks; --",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a log4shell probe, literally.
  "${jndi:ldap://x/a}",
  "{{7*7}}",
  "<script>alert(1)</script>",
  "a".repeat(129),
  "a".repeat(257),
  "a".repeat(5000),
  "9".repeat(400),
  "-1",
  "0",
  "1e309",
  "NaN",
  "Infinity",
  "true",
  "null",
  "[]",
  "{}",
  "0x1F",
  " 5 ",
  "TASK#x",
  "T#default#TASK",
  "#",
  "%",
  "%%",
  "%E0%A4%A",
  "\\u0000",
];
const text = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...NASTY) },
  { weight: 2, arbitrary: fc.string({ maxLength: 30 }) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 30 }) },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 30 }) },
  { weight: 1, arbitrary: fc.string({ unit: "binary-ascii", maxLength: 300 }) },
);
const number = fc.oneof(
  fc.integer(),
  fc.integer({ min: -20, max: 20 }),
  fc.double(),
  fc.constantFrom(0, -0, 1.5, 2 ** 53, -(2 ** 63), 1e308),
);
const scalar = fc.oneof(text, number, fc.boolean(), fc.constant(null));
const anyJson = fc.oneof(
  { weight: 4, arbitrary: scalar },
  { weight: 1, arbitrary: fc.array(scalar, { maxLength: 5 }) },
  { weight: 1, arbitrary: fc.dictionary(text, scalar, { maxKeys: 5 }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
);
const pathLike = fc.oneof(
  fc.constantFrom("a.txt", "docs/a.md", "out/report.md", "../x", "a/../../b", "/etc/passwd", "a//b", "a\\b"),
  fc.constantFrom("./a", "a/./b", "...", "a/..", "con", "nul", "%2e%2e/x", " ", "é/ü.md", "a".repeat(600)),
  fc
    .array(fc.constantFrom("a", "..", ".", "b c", "\u0000", "é", "%2e%2e", "\u202e"), {
      minLength: 1,
      maxLength: 5,
    })
    .map((parts) => parts.join("/")),
  text,
);
const isoDate = fc
  .date({ min: new Date("1969-01-01"), max: new Date("2200-01-01"), noInvalidDate: true })
  .map((d) => d.toISOString());
const tagsValue = fc.oneof(
  fc.dictionary(text, fc.oneof(text, scalar), { maxKeys: 6 }),
  fc
    .array(fc.tuple(text, text), { maxLength: 5 })
    .map((pairs) => pairs.map(([k, v]) => `${k}=${v}`).join(",")),
  fc.constantFrom("team=a,env=prod", "__proto__=x", "constructor=y", "k", "=v", ",,,", "a=b=c"),
  anyJson,
);

/** Per submission field: realistic values (to reach deep paths) mixed with anything at all. */
const FIELD_VALUES: Record<string, fc.Arbitrary<unknown>> = {
  tool: fc.constantFrom(...TOOLS, "bard", "Claude", ""),
  model: fc.oneof(fc.constantFrom("claude-sonnet-4-5", "m"), text),
  prompt: fc.oneof(fc.string({ minLength: 1, maxLength: 60 }), text, fc.constant("p".repeat(100_001))),
  input_files: fc.oneof(
    fc.array(fc.record({ name: pathLike, content: fc.oneof(text, fc.string({ maxLength: 200 })) }), {
      maxLength: 3,
    }),
    fc.array(anyJson, { maxLength: 3 }),
  ),
  output_files: fc.oneof(fc.array(pathLike, { maxLength: 4 }), anyJson),
  pool: fc.constantFrom("main", "cx", "nope", "Main", "main ", "a".repeat(61)),
  priority: fc.oneof(fc.integer({ min: -3, max: 12 }), fc.constantFrom("7", " 9 ", "high", "1.5")),
  prior: fc.oneof(fc.integer({ min: -3, max: 12 }), fc.constantFrom("2", "low")),
  name: text,
  namespace: text,
  project: text,
  tags: tagsValue,
  idempotency_key: fc.oneof(fc.constantFrom("k1", "k2", "k3"), text),
  concurrency_key: fc.oneof(fc.constantFrom("acct-1", "acct-2"), text),
  exclusive: fc.oneof(fc.boolean(), fc.constantFrom("true", 1)),
  max_attempts: fc.oneof(fc.integer({ min: -1, max: 25 }), fc.constantFrom("3", "x")),
  timeout: fc.oneof(fc.integer({ min: -1, max: 100_000 }), fc.constantFrom("600", " 60 ", "soon", "1e3")),
  callback: fc.constantFrom(
    "https://example.com/hook",
    "http://127.0.0.1:1/x",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/x",
    "ftp://example.com/",
    "javascript:alert(1)",
    "https://user:pass@example.com/",
    `https://example.com/${"a".repeat(3000)}`,
    "not a url",
  ),
  scheduled_at: fc.oneof(
    isoDate,
    fc.constantFrom("tomorrow", "2026-13-45T99:99:99Z", "0000-01-01T00:00:00Z"),
  ),
  schedule: fc.oneof(
    fc.constantFrom("*/5 * * * *", "0 9 * * 1-5", "61 * * * *", "* * * * * * *", "@hourly", "0 0 31 2 *"),
    text,
  ),
  timezone: fc.oneof(
    fc.constantFrom("UTC", "Europe/Paris", "Mars/Olympus", "../../etc/localtime", "Etc/GMT+14"),
    text,
  ),
  interval: fc.oneof(fc.integer({ min: -5, max: 40_000_000 }), fc.constantFrom("60", "1")),
  valid_time_range: fc.oneof(
    fc.tuple(fc.integer({ min: -30, max: 30 }), fc.integer({ min: -30, max: 30 })),
    fc.tuple(fc.integer(), fc.integer()),
    anyJson,
  ),
  end_time: fc.oneof(isoDate, text),
  times: fc.oneof(fc.integer({ min: -1, max: 2_000_000 }), fc.constantFrom("3")),
  overlap: fc.constantFrom("skip", "queue", "allow", "SKIP", ""),
};
const fieldAndValue = fc
  .constantFrom(...Object.keys(FIELD_VALUES), "surprise", "Tool", "tool ")
  .chain((field) => fc.tuple(fc.constant(field), FIELD_VALUES[field] ?? anyJson));

/** A valid submission with a few fields replaced, added or dropped. */
const submission = fc
  .record({
    base: fc.record({
      tool: fc.constantFrom(...TOOLS),
      prompt: fc.string({ minLength: 1, maxLength: 40 }),
      pool: fc.option(fc.constantFrom("main", "cx"), { nil: undefined }),
    }),
    changes: fc.oneof(
      { weight: 1, arbitrary: fc.constant([]) },
      { weight: 2, arbitrary: fc.array(fieldAndValue, { minLength: 1, maxLength: 3 }) },
    ),
    drop: fc.oneof(
      { weight: 3, arbitrary: fc.constant([]) },
      { weight: 1, arbitrary: fc.subarray(["tool", "prompt"]) },
    ),
  })
  .map(({ base, changes, drop }) => {
    const body: Record<string, unknown> = { ...base };
    // A pool of another tool is a 409; keep most generated bodies consistent so that many get through.
    if (body.pool === "cx") body.tool = "codex";
    if (body.pool === "main") body.tool = "claude";
    for (const [field, value] of changes) body[field] = value;
    for (const field of drop) delete body[field];
    return body;
  });

/** JSON text that puts a prototype key at some depth (JSON.stringify cannot write `__proto__` keys). */
const pollutedJson = fc
  .tuple(fc.constantFrom("__proto__", "constructor", "prototype"), fc.constantFrom("top", "tags", "files"))
  .map(([key, where]) => {
    const evil = `"${key}":{"polluted":true,"prototype":{"polluted":true}}`;
    if (where === "top") return `{${evil},"tool":"claude","prompt":"x"}`;
    if (where === "tags") return `{"tool":"claude","prompt":"x","tags":{${evil}}}`;
    return `{"tool":"claude","prompt":"x","input_files":[{"name":"a","content":"b",${evil}}]}`;
  });

const malformed = fc.oneof(
  fc.constantFrom(
    "{",
    "}",
    "{not json",
    '{"a":}',
    "[1,2",
    '"unterminated',
    "nul\u0000l",
    "{'single':1}",
    '{"a":1}}',
  ),
  fc.constantFrom(
    "[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]",
    '{"a":{"a":{"a":{"a":{"a":{"a":1}}}}}}',
    "\ufeff{}",
  ),
  fc.string({ maxLength: 50 }),
);

/** Bodies too costly to generate again and again: every route gets each of them once (see the sweep). */
const EXPENSIVE_BODIES: Record<string, Buffer> = {
  "too large": Buffer.from("x".repeat(MAX_BODY_BYTES + 10)),
  "nested 100,000 deep": Buffer.from(`${"[".repeat(100_000)}${"]".repeat(100_000)}`),
  "objects nested 20,000 deep": Buffer.from(`${'{"a":'.repeat(20_000)}1${"}".repeat(20_000)}`),
  "invalid UTF-8": Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0xff, 0xfe, 0x22, 0x7d]),
  "UTF-16 JSON": Buffer.from('{"tool":"claude","prompt":"x"}', "utf16le"),
};

type Body = string | Buffer | undefined;
/** Bodies for any route: the route's own shape, anything JSON, malformed text, bytes, too large, none. */
const bodyFor = (route: Route): fc.Arbitrary<Body> => {
  const own: fc.Arbitrary<unknown> =
    route.path === "/v2/tasks" && route.method === "POST"
      ? submission
      : route.path.endsWith("/tags")
        ? fc.record({ tags: tagsValue }, { requiredKeys: [] })
        : route.path.endsWith("/reorder")
          ? fc.record({ priority_offset: fc.oneof(number, text) }, { requiredKeys: [] })
          : route.path === "/v2/tenants"
            ? fc.record(
                {
                  name: fc.oneof(fc.constantFrom("acme", "Ünïcødé 株式会社"), text),
                  rate_limit_per_minute: fc.oneof(number, text),
                  max_queued_tasks: fc.oneof(number, text),
                  max_submissions_per_minute: fc.oneof(number, text),
                },
                { requiredKeys: [] },
              )
            : route.path.endsWith("/keys")
              ? fc.record(
                  { scopes: fc.oneof(fc.subarray(["tasks:read", "tasks:write", "admin", "root"]), anyJson) },
                  {
                    requiredKeys: [],
                  },
                )
              : anyJson;
  return fc.oneof(
    { weight: 16, arbitrary: own.map((value) => JSON.stringify(value)) },
    { weight: 4, arbitrary: anyJson.map((value) => JSON.stringify(value) ?? "null") },
    { weight: 2, arbitrary: pollutedJson },
    { weight: 2, arbitrary: malformed },
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: 120 }).map((bytes) => Buffer.from(bytes)) },
    { weight: 4, arbitrary: fc.constant(undefined) },
  );
};

const visibleAscii = fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
  maxLength: 80,
});
const headerValue = fc.oneof(
  { weight: 4, arbitrary: visibleAscii },
  {
    weight: 1,
    arbitrary: fc.string({
      unit: fc.integer({ min: 0xa0, max: 0xff }).map((c) => String.fromCharCode(c)),
      maxLength: 20,
    }),
  },
  { weight: 1, arbitrary: fc.constantFrom("x".repeat(9000), "x".repeat(20_000), "\t", "Bearer") },
);
const headerName = fc.oneof(
  fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/),
  fc.constantFrom(
    "x-api-key",
    "authorization",
    "content-type",
    "cookie",
    "x-forwarded-for",
    "accept-encoding",
    "x-amzn-trace-id",
  ),
);
/** Mostly keys that work (so that requests reach the routes), and about one in five that must not. */
const authHeaders = (): fc.Arbitrary<Record<string, string>> =>
  fc
    .oneof(
      { weight: 12, arbitrary: fc.constant({ authorization: `Bearer ${keys.admin}` }) },
      { weight: 10, arbitrary: fc.constant({ authorization: `Bearer ${keys.fuzz}` }) },
      { weight: 1, arbitrary: fc.constant({ "x-api-key": keys.reader }) },
      { weight: 1, arbitrary: fc.constant({ authorization: `Bearer ${keys.revoked}` }) },
      { weight: 1, arbitrary: fc.constant({}) },
      { weight: 1, arbitrary: headerValue.map((authorization) => ({ authorization })) },
      { weight: 1, arbitrary: headerValue.map((key) => ({ "x-api-key": key })) },
      {
        weight: 1,
        arbitrary: fc.constantFrom(
          { authorization: "Bearer" },
          { authorization: "Bearer     " },
          { authorization: `bearer ${keys.admin}` },
          { authorization: `Basic ${Buffer.from(`admin:${keys.admin}`).toString("base64")}` },
          { authorization: `Bearer ${keys.admin}x` },
          { authorization: `Bearer ${keys.admin.slice(0, -1)}` },
          { authorization: `Bearer ${keys.fuzz}`, "x-api-key": "wrong" },
          { authorization: "Bearer wrong", "x-api-key": keys.admin },
        ),
      },
    )
    .map((headers) => headers as Record<string, string>);
const headersArb = () =>
  fc
    .tuple(
      authHeaders(),
      fc.dictionary(headerName, headerValue, { maxKeys: 3 }),
      fc.option(
        fc.constantFrom(
          "application/json",
          "text/plain",
          "application/x-www-form-urlencoded",
          "multipart/form-data; boundary=x",
          "application/json; charset=utf-16",
        ),
        { nil: undefined },
      ),
    )
    .map(([auth, extra, type]) => ({ ...extra, ...auth, ...(type ? { "content-type": type } : {}) }));

const QUERY_KEYS = [
  "status",
  "pool",
  "namespace",
  "tag",
  "size",
  "cursor",
  "tenant",
  "run_id",
  "task_id",
  "__proto__",
  "constructor",
  "size[]",
];
/**
 * Cursors a client forged: JSON naming the key attributes of a listing, with values real (so that the
 * listing's own checks pass), empty, too long, or anything.
 */
const forgedCursor = () => {
  const keyText = fc.oneof(
    {
      weight: 3,
      arbitrary: fc.constantFrom("", "queued#", "RUN#", "TASK", "x".repeat(1100), `RUN#${"x".repeat(1100)}`),
    },
    { weight: 2, arbitrary: fc.constantFrom(...(ids.uuid ?? []).map((uuid) => `TASK#${uuid}`)) },
    { weight: 1, arbitrary: text },
  );
  const fuzz = ids.id?.[0] ?? "";
  const listing = fc.oneof(
    {
      weight: 4,
      arbitrary: fc.constantFrom("T#default#TASK", "T#default#RUN", `T#${fuzz}#TASK`, `T#${fuzz}#RUN`),
    },
    { weight: 1, arbitrary: keyText },
  );
  return fc
    .record(
      { pk: keyText, sk: keyText, gsi1pk: listing, gsi1sk: keyText, extra: anyJson },
      { requiredKeys: ["pk", "sk", "gsi1pk", "gsi1sk"] },
    )
    .map((key) => Buffer.from(JSON.stringify(key)).toString("base64url"));
};

const queryArb = () =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constant("") },
    {
      weight: 6,
      arbitrary: fc
        .array(
          fc.tuple(
            fc.oneof(
              { weight: 4, arbitrary: fc.constantFrom(...QUERY_KEYS) },
              { weight: 1, arbitrary: text },
            ),
            fc.oneof(
              fc.constantFrom(
                ...TASK_STATUSES,
                ...RUN_STATUSES,
                "main",
                "team=a",
                "=",
                "k=",
                "1",
                "100",
                "101",
                "0",
                "-1",
              ),
              fc.constantFrom(
                "x".repeat(3000),
                Buffer.from('{"pk":"TASK#x","sk":"TASK"}').toString("base64url"),
              ),
              forgedCursor(),
              text,
            ),
          ),
          { maxLength: 4 },
        )
        .map((pairs) => `?${pairs.map(([k, v]) => `${enc(k)}=${enc(v)}`).join("&")}`),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        "?%",
        "?%ZZ=1",
        "?status=%E0%A4%A",
        "?&&&",
        "?=",
        "?a==b",
        "?size=1&size=500",
        `?${"a=1&".repeat(1500)}`,
        "?tag=%00%00",
        "?tag=%F0%9F%98%80=%ED%A0%80",
      ),
    },
  );

/** A path parameter: a real id, a generated string (escaped), or a raw hostile segment. */
const segmentFor = (param: string): fc.Arbitrary<string> => {
  const real = ids[param] ?? [];
  const options: fc.WeightedArbitrary<string>[] = [
    { weight: 3, arbitrary: text.map(enc) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        "%ZZ",
        "%E0%A4%A",
        "%2e%2e",
        "..",
        ".",
        "%2F",
        "a%2F..%2F..%2Fb",
        "%00",
        "x".repeat(3000),
        "%ED%A0%80",
      ),
    },
  ];
  if (real.length > 0) options.push({ weight: 5, arbitrary: fc.constantFrom(...real).map(enc) });
  return fc.oneof(...options);
};
const greedySegment = fc.oneof(
  fc.constantFrom(...(["docs/a.md", "a.txt", "out/report.md"] as const)),
  fc
    .array(
      fc.oneof(
        fc.constantFrom(
          "..",
          "%2e%2e",
          ".",
          "docs",
          "a.md",
          "%2F..%2F..",
          "%5C..%5C",
          "%00",
          "etc",
          "passwd",
          "",
        ),
        text.map(enc),
      ),
      { minLength: 1, maxLength: 6 },
    )
    .map((parts) => parts.join("/")),
);

/** The concrete path of a route with every `{param}` replaced by a generated segment. */
const pathFor = (route: Route): fc.Arbitrary<string> => {
  const parts = route.path.split("/").filter(Boolean);
  return fc
    .tuple(
      ...parts.map((part): fc.Arbitrary<string> => {
        const greedy = /^\{(.+)\+\}$/.exec(part);
        if (greedy) return greedySegment;
        const param = /^\{(.+)\}$/.exec(part)?.[1];
        return param ? segmentFor(param) : fc.constant(part);
      }),
    )
    .map((segments) => `/${segments.join("/")}`);
};

async function inParallel<T>(items: T[], limit: number, fn: (item: T, index: number) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const index = next++;
        await fn(items[index] as T, index);
      }
    }),
  );
}

// ---------- fixtures ----------

async function api(method: string, path: string, body?: unknown, key = keys.admin) {
  const res = await stack.call(method, path, { key, body });
  expect(res.status, `${method} ${path}: ${res.text}`).toBeLessThan(300);
  return res.json?.data;
}

beforeAll(async () => {
  stack = await startTestStack(CONFIG, { workers: false });
  keys.admin = stack.adminKey;
  const unlimited = {
    rate_limit_per_minute: 1_000_000,
    max_queued_tasks: 1_000_000,
    max_submissions_per_minute: 1_000_000,
  };
  const fuzz = await api("POST", "/v2/tenants", { name: "fuzz", ...unlimited });
  keys.fuzz = fuzz.api_key;
  keys.reader = (await api("POST", `/v2/tenants/${fuzz.tenant.id}/keys`, { scopes: ["tasks:read"] })).api_key;
  const victim = await api("POST", "/v2/tenants", { name: "victim", ...unlimited });
  const spare = await api("POST", `/v2/tenants/${victim.tenant.id}/keys`);
  const revoked = await api("POST", `/v2/tenants/${victim.tenant.id}/keys`);
  await api("DELETE", `/v2/tenants/${victim.tenant.id}/keys/${revoked.key_id}`);
  keys.revoked = revoked.api_key;

  const submitted = [];
  const file = { name: "docs/a.md", content: "# hi" };
  for (const [body, key] of [
    [{ tool: "claude", prompt: "one", input_files: [file], tags: { team: "a" } }, keys.admin],
    [{ tool: "claude", prompt: "two", concurrency_key: "acct-1" }, keys.admin],
    [{ pool: "cx", prompt: "three" }, keys.admin],
    [{ pool: "cx", prompt: "waits" }, keys.admin],
    [{ tool: "claude", prompt: "later", scheduled_at: "2100-01-01T00:00:00Z" }, keys.admin],
    [{ tool: "claude", prompt: "every hour", interval: 3600 }, keys.admin],
    [{ tool: "claude", prompt: "fuzz's", input_files: [file], idempotency_key: "k1" }, keys.fuzz],
    [{ pool: "cx", prompt: "fuzz waits" }, keys.fuzz],
  ] as const) {
    submitted.push(await api("POST", "/v2/tasks", body, key));
  }
  ids.uuid = submitted.map((t) => t.uuid);
  ids.run_id = submitted.flatMap((t) => (t.run_id ? [t.run_id] : []));
  ids.id = [fuzz.tenant.id, victim.tenant.id, "t_00000000000000000000"];
  ids.key_id = [spare.key_id, revoked.key_id, victim.key_id, "key_0000000000000000"];
  ids.name = ["main", "cx", "nope"];
  expect(ids.run_id.length).toBeGreaterThanOrEqual(3);
}, 120_000);

afterAll(async () => {
  agent.destroy();
  if (!stopped) await stack?.stop();
});

// ---------- properties ----------

describe("hostile requests against every route", () => {
  it("answer each one with a 4xx envelope with a code, or a success; never a 5xx", async () => {
    const started = performance.now();
    const cpu = process.cpuUsage();
    const properties = ROUTES.map((route, index) => ({ route, index }));
    await inParallel(properties, PARALLEL_ROUTES, async ({ route, index }) => {
      await fc.assert(
        fc.asyncProperty(
          pathFor(route),
          queryArb(),
          headersArb(),
          bodyFor(route),
          async (path, query, headers, body) => {
            const payload = body === undefined ? undefined : Buffer.from(body);
            const answer = await send(route.method, `${path}${query}`, headers, payload);
            count(`${route.method} ${route.path}`, answer.status);
            checkAnswer(route, answer);
          },
        ),
        {
          seed: SEED + index,
          numRuns: route.method === "POST" && route.path === "/v2/tasks" ? SUBMIT_RUNS : RUNS_PER_ROUTE,
          endOnFailure: true,
        },
      );
    });
    // Forged cursors on every route that pages, with a key that works.
    const paging = ROUTES.filter(
      (r) => r.method === "GET" && ["/v2/tasks", "/v2/instances", "/v2/tasks/{uuid}/events"].includes(r.path),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...paging),
        forgedCursor(),
        fc.constantFrom(keys.admin, keys.fuzz),
        fc.option(fc.constantFrom("status=queued", "status=dispatched", `task_id=${ids.uuid?.[0]}`), {
          nil: undefined,
        }),
        async (route, cursor, key, filter) => {
          const path = route.path.replace("{uuid}", ids.uuid?.[0] ?? "");
          const query = `?cursor=${cursor}${filter ? `&${filter}` : ""}`;
          const answer = await send("GET", `${path}${query}`, { authorization: `Bearer ${key}` });
          count(`${route.method} ${route.path}`, answer.status);
          checkAnswer(route, answer);
        },
      ),
      { seed: SEED - 2, numRuns: 150, endOnFailure: true },
    );
    // Methods no route has, on every route's path: a 404 envelope (1012), never a crash.
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ROUTES),
        fc.constantFrom("PUT", "PATCH", "OPTIONS", "TRACE", "PROPFIND", "get"),
        headersArb(),
        async (route, method, headers) => {
          const path = route.path.replaceAll(/\{[^}]+\}/g, "x");
          const answer = await send(method, path, headers);
          count(`${method} *`, answer.status);
          // Node's client sends a lowercase method upper-cased: that one is the route's own answer.
          checkAnswer(method.toUpperCase() === route.method ? route : undefined, answer);
        },
      ),
      { seed: SEED - 1, numRuns: 150, endOnFailure: true },
    );
    // The expensive bodies, once per route, with a key that works.
    for (const route of ROUTES) {
      const path = route.path
        .replace("{path+}", "docs/a.md")
        .replaceAll(/\{([^}]+)\}/g, (_, p: string) => ids[p]?.[0] ?? "x");
      for (const [what, body] of Object.entries(EXPENSIVE_BODIES)) {
        for (const key of [keys.admin, keys.fuzz]) {
          const answer = await send(route.method, path, { authorization: `Bearer ${key}` }, body);
          count(`${route.method} ${route.path}`, answer.status);
          try {
            checkAnswer(route, answer);
          } catch (err) {
            throw new Error(`${what}: ${(err as Error).message}`);
          }
        }
      }
    }

    const seconds = (performance.now() - started) / 1000;
    const requests = [...tally.values()].reduce(
      (n, byStatus) => n + [...byStatus.values()].reduce((a, b) => a + b, 0),
      0,
    );
    const statuses = new Map<number, number>();
    for (const byStatus of tally.values()) {
      for (const [status, n] of byStatus) statuses.set(status, (statuses.get(status) ?? 0) + n);
    }
    const { user, system } = process.cpuUsage(cpu);
    console.info(
      `hostile suite: ${requests} requests on ${ROUTES.length} routes in ${seconds.toFixed(1)} s ` +
        `(this process: ${((user + system) / 1e6).toFixed(1)} s CPU, with the API it serves); ` +
        `by status ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`,
    );
    expect(requests).toBeGreaterThanOrEqual(ROUTES.length * RUNS_PER_ROUTE + SUBMIT_RUNS);
    // The generators reach past validation too: many submissions get through, and every route answers
    // something other than 401 and 404 at least once.
    const submits = tally.get("POST /v2/tasks");
    expect(((submits?.get(201) ?? 0) + (submits?.get(200) ?? 0)) / SUBMIT_RUNS).toBeGreaterThan(0.1);
    expect(submits?.get(400) ?? 0).toBeGreaterThan(SUBMIT_RUNS / 4);
    for (const route of ROUTES) {
      const byStatus = tally.get(`${route.method} ${route.path}`) ?? new Map<number, number>();
      const deeper = [...byStatus].filter(([status]) => status !== 401 && status !== 404);
      expect(
        deeper.length,
        `${route.method} ${route.path}: ${JSON.stringify([...byStatus])}`,
      ).toBeGreaterThan(0);
    }
    expect(Object.prototype).not.toHaveProperty("polluted");
  }, 120_000);

  it("leave no half-written item in the store", async () => {
    // Stop the tick first, so that nothing moves while the table is read.
    stopped = true;
    await stack.stop();
    const items: Record<string, unknown>[] = [];
    for await (const page of paginateScan(
      { client: stack.clients.doc },
      { TableName: stack.resources.tableName, ConsistentRead: true },
    )) {
      items.push(...(page.Items ?? []));
    }
    const blobs = new Set<string>();
    let token: string | undefined;
    do {
      const page = await stack.clients.s3.send(
        new ListObjectsV2Command({
          Bucket: stack.resources.bucketName,
          Prefix: "files/",
          ContinuationToken: token,
        }),
      );
      for (const object of page.Contents ?? []) if (object.Key) blobs.add(object.Key);
      token = page.NextContinuationToken;
    } while (token);

    const kind = (item: Record<string, unknown>) => String(String(item.sk).split("#")[0]);
    const tasks = new Map<string, Task>();
    for (const item of items.filter((i) => kind(i) === "TASK"))
      tasks.set(String(item.uuid), item as unknown as Task);
    const runs = items.filter((i) => kind(i) === "RUN") as unknown as Run[];
    expect(tasks.size).toBeGreaterThan(SUBMIT_RUNS / 10);

    const problems: string[] = [];
    const isIso = (v: unknown) => typeof v === "string" && !Number.isNaN(Date.parse(v));
    for (const task of tasks.values()) {
      const bad = (why: string) => problems.push(`task ${task.uuid}: ${why}`);
      if (!/^[0-9a-f-]{36}$/.test(task.uuid)) bad("uuid");
      if (!Number.isInteger(task.version) || task.version < 1) bad("version");
      if (typeof task.tenant !== "string" || task.tenant === "") bad("tenant");
      if (!(TOOLS as readonly string[]).includes(task.tool)) bad("tool");
      if (!["main", "cx"].includes(task.pool)) bad("pool");
      if (!(TASK_STATUSES as readonly string[]).includes(task.status)) bad("status");
      if (typeof task.prompt !== "string" || task.prompt === "") bad("prompt");
      if (!Number.isInteger(task.priority) || task.priority < 1 || task.priority > 9) bad("priority");
      if (typeof task.namespace !== "string" || typeof task.tags !== "object") bad("namespace or tags");
      if (!Array.isArray(task.input_files) || !Array.isArray(task.output_files)) bad("files");
      if (![task.attempt, task.max_attempts, task.timeout, task.occurrence].every(Number.isInteger))
        bad("counters");
      if (!isIso(task.create_time) || !isIso(task.update_time)) bad("times");
      for (const name of task.input_files ?? []) {
        if (!blobs.has(blobKeys.input(task.uuid, name))) bad(`input file ${name} missing`);
      }
      if ((ACTIVE_STATUSES as readonly string[]).includes(task.status)) {
        const run = runs.find((r) => r.task_uuid === task.uuid && r.run_id === task.run_id);
        if (!run) bad(`${task.status} without its run ${task.run_id}`);
        else if (run.status !== task.status) bad(`${task.status} but its run is ${run.status}`);
      }
    }
    for (const run of runs) {
      const task = tasks.get(run.task_uuid);
      if (!task) problems.push(`run ${run.run_id}: no task`);
      else if (task.tenant !== run.tenant) problems.push(`run ${run.run_id}: tenant differs from its task's`);
      if (!(RUN_STATUSES as readonly string[]).includes(run.status))
        problems.push(`run ${run.run_id}: status`);
    }
    for (const idem of items.filter((i) => kind(i) === "IDEM")) {
      const task = tasks.get(String(idem.uuid));
      if (!task) problems.push(`idempotency ${String(idem.pk)}: no task ${String(idem.uuid)}`);
      else if (task.tenant !== idem.tenant || task.idempotency_key !== idem.key) {
        problems.push(`idempotency ${String(idem.pk)}: points at a task of another tenant or key`);
      }
    }
    // Slots: each pool's, concurrency key's and scope's count is exactly the tasks that hold one.
    const held = new Map<string, number>();
    const hold = (pk: string) => held.set(pk, (held.get(pk) ?? 0) + 1);
    for (const task of tasks.values()) {
      if (!(ACTIVE_STATUSES as readonly string[]).includes(task.status)) continue;
      const slot = slotOf(task);
      hold(`POOL#${slot.pool}`);
      if (slot.concurrencyKey !== undefined) hold(`CKEY#${slot.concurrencyKey}`);
      for (const scope of slot.scopes ?? []) hold(`SCOPE#${scope}`);
    }
    for (const counter of items.filter((i) => ["POOL", "CKEY", "SCOPE"].includes(kind(i)))) {
      const expected = held.get(String(counter.pk)) ?? 0;
      if ((counter.active ?? 0) !== expected) {
        problems.push(`${String(counter.pk)}: counts ${String(counter.active)} slots, ${expected} are held`);
      }
      held.delete(String(counter.pk));
    }
    for (const [pk, n] of held) problems.push(`${pk}: ${n} slots held but no counter`);
    // Each key's count of open tasks is exactly its open tasks, and of exclusive ones, at most one, alone.
    const open = new Map<string, { open: number; exclusive: number }>();
    for (const task of tasks.values()) {
      if ((TERMINAL_STATUSES as readonly string[]).includes(task.status) || !task.key_counted) continue;
      const pk = `CKEY#${task.tenant}#${task.concurrency_key}`;
      const counts = open.get(pk) ?? { open: 0, exclusive: 0 };
      open.set(pk, { open: counts.open + 1, exclusive: counts.exclusive + (task.exclusive ? 1 : 0) });
    }
    for (const counter of items.filter((i) => i.sk === "OPEN")) {
      const expected = open.get(String(counter.pk)) ?? { open: 0, exclusive: 0 };
      const counted = { open: counter.open ?? 0, exclusive: counter.exclusive ?? 0 };
      if (JSON.stringify(counted) !== JSON.stringify(expected)) {
        problems.push(
          `${String(counter.pk)}: counts ${JSON.stringify(counted)} open, ${JSON.stringify(expected)} are`,
        );
      }
      if (expected.exclusive > 0 && expected.open > 1)
        problems.push(`${String(counter.pk)}: an exclusive task is not alone`);
      open.delete(String(counter.pk));
    }
    for (const [pk, counts] of open) problems.push(`${pk}: ${counts.open} open tasks but no counter`);
    // Each tenant's queued-task counter (max_queued_tasks is checked on it) and each pool's (a submission
    // is dispatched at once only while it is 0) is exactly the queued tasks.
    const queued = new Map<string, number>();
    for (const task of tasks.values()) {
      if (task.status !== "queued") continue;
      for (const pk of [`TENANT#${task.tenant}`, `POOL#${task.pool}`])
        queued.set(pk, (queued.get(pk) ?? 0) + 1);
    }
    for (const counter of items.filter((i) => ["QUEUED", "POOL"].includes(kind(i)))) {
      const expected = queued.get(String(counter.pk)) ?? 0;
      if ((counter.queued ?? 0) !== expected) {
        problems.push(
          `${String(counter.pk)}: counts ${String(counter.queued)} queued tasks, ${expected} are queued`,
        );
      }
      queued.delete(String(counter.pk));
    }
    for (const [pk, n] of queued) problems.push(`${pk}: ${n} queued tasks but no counter`);
    const tenants = new Set(items.filter((i) => kind(i) === "TENANT").map((i) => String(i.id)));
    for (const key of items.filter((i) => kind(i) === "KEY")) {
      if (!tenants.has(String(key.tenant_id))) problems.push(`key ${String(key.key_id)}: no tenant`);
      if (!/^[0-9a-f]{64}$/.test(String(key.key_hash)))
        problems.push(`key ${String(key.key_id)}: not a hash`);
    }
    expect(problems).toEqual([]);
  });
});
