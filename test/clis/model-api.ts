import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { type WebSocket, WebSocketServer } from "ws";

/**
 * A local stand-in for the three model APIs the CLIs call: Anthropic's Messages API (claude), OpenAI's
 * Responses API over HTTPS or WebSocket (codex) and the Gemini API (gemini). Each request is answered
 * with the scenario named in its prompt as `[standin:<scenario>]` (a success when none is named), so the
 * real CLIs can be run against it with a base-URL override and a fake key, and their output captured.
 */

export const SCENARIOS = [
  "success",
  "error",
  "rate-limit",
  "usage-limit",
  "weekly-limit",
  "limit-warning",
] as const;
export type Scenario = (typeof SCENARIOS)[number];

/** The answer text and token counts of a success, the same for the three APIs. */
export const ANSWER = { text: "STANDIN_ANSWER: the work is done.", input: 12, output: 34 };

/** A base-URL path under which the Responses API refuses WebSocket upgrades (HTTPS still works). */
export const NO_WEBSOCKET_PREFIX = "/no-websocket";

/** The message of the `error` scenario's refusal. */
export const ERROR_MESSAGE = "STANDIN_ERROR: the prompt was refused.";

/** How far ahead each limit scenario's reset lies; resets fall on a whole minute, as the CLIs print them. */
const RESET_AHEAD_MS = { "usage-limit": 25 * 60_000, "weekly-limit": 4 * 86_400_000 + 3 * 3600_000 };

export interface StandIn {
  url: string;
  /** When each limit scenario's limit resets. */
  resets: Record<keyof typeof RESET_AHEAD_MS, Date>;
  /** Every request the CLIs made (a WebSocket message counts as one), for what they sent. */
  requests: { method: string; path: string; headers: IncomingMessage["headers"]; body: string }[];
  close(): Promise<void>;
}

/** What an API answers: a refusal with a status, or a stream of events. */
type Answer =
  | { status: number; body: unknown; headers?: Record<string, string> }
  | { events: { event?: string; data: unknown }[]; headers?: Record<string, string> };

interface Call {
  path: string;
  request: Record<string, unknown>;
  scenario: Scenario;
  resets: StandIn["resets"];
}

export async function startModelApi(): Promise<StandIn> {
  const now = Date.now();
  const resetIn = (ms: number) => new Date(Math.ceil((now + ms) / 60_000) * 60_000);
  const resets = {
    "usage-limit": resetIn(RESET_AHEAD_MS["usage-limit"]),
    "weekly-limit": resetIn(RESET_AHEAD_MS["weekly-limit"]),
  };
  const requests: StandIn["requests"] = [];
  const call = (path: string, body: string): Call => ({
    path,
    request: parseObject(body),
    scenario: SCENARIOS.find((s) => s === /\[standin:([a-z-]+)\]/.exec(body)?.[1]) ?? "success",
    resets,
  });

  const server: Server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => {
      body += chunk;
    });
    req.on("end", () => {
      const path = req.url ?? "/";
      requests.push({ method: req.method ?? "GET", path, headers: req.headers, body });
      const route = path.replace(NO_WEBSOCKET_PREFIX, "");
      const api = API_BY_PATH.find(({ prefix }) => route.startsWith(prefix));
      if (!api) return sendJson(res, { status: 404, body: { error: { message: `no route ${path}` } } });
      const answer = api.authorized(req.headers) ? api.answer(call(route, body)) : api.unauthorized;
      if ("events" in answer) sendEvents(res, answer.events, answer.headers);
      else sendJson(res, answer);
    });
  });

  // Codex opens the Responses API as a WebSocket first: each `response.create` message is one request,
  // answered with the same events as over HTTPS, or with the refusal wrapped in an `error` event. Under
  // NO_WEBSOCKET_PREFIX the upgrade is refused, as by a proxy that passes HTTPS only.
  const sockets = new WebSocketServer({ noServer: true });
  server.on("upgrade", (req, socket, head) => {
    if (req.url !== "/v1/responses") {
      socket.end("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n");
      return;
    }
    sockets.handleUpgrade(req, socket, head, (ws) => sockets.emit("connection", ws, req));
  });
  sockets.on("connection", (socket: WebSocket, req: IncomingMessage) => {
    socket.on("message", (data) => {
      const body = String(data);
      requests.push({ method: "WS", path: req.url ?? "/", headers: req.headers, body });
      const answer = RESPONSES_API.authorized(req.headers)
        ? openai(call("/v1/responses", body))
        : RESPONSES_API.unauthorized;
      if ("events" in answer) for (const { data } of answer.events) socket.send(JSON.stringify(data));
      else
        socket.send(
          JSON.stringify({
            type: "error",
            status: answer.status,
            headers: answer.headers ?? {},
            ...asObject(answer.body),
          }),
        );
    });
  });

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    resets,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets.clients) socket.terminate();
        sockets.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function parseObject(body: string): Record<string, unknown> {
  try {
    return asObject(JSON.parse(body));
  } catch {
    return {};
  }
}

const asObject = (value: unknown): Record<string, unknown> =>
  typeof value === "object" && value !== null ? (value as Record<string, unknown>) : {};

function sendJson(
  res: ServerResponse,
  { status, body, headers }: { status: number; body: unknown; headers?: Record<string, string> },
) {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

function sendEvents(
  res: ServerResponse,
  events: { event?: string; data: unknown }[],
  headers?: Record<string, string>,
) {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", ...headers });
  for (const { event, data } of events)
    res.write(`${event ? `event: ${event}\n` : ""}data: ${JSON.stringify(data)}\n\n`);
  res.end();
}

const epochSeconds = (date: Date) => Math.floor(date.getTime() / 1000);
const secondsUntil = (date: Date) => Math.max(0, Math.round((date.getTime() - Date.now()) / 1000));
/** SSE events named by their own `type`, as the Anthropic and OpenAI streams send them. */
const typed = (...events: { type: string }[]) => events.map((data) => ({ event: data.type, data }));

// ---- Anthropic Messages API (claude) ---------------------------------------------------------------

function anthropic({ request, scenario, resets }: Call): Answer {
  const refusal = (status: number, type: string, message: string, headers?: Record<string, string>) => ({
    status,
    body: { type: "error", error: { type, message } },
    headers,
  });
  switch (scenario) {
    case "error":
      return refusal(400, "invalid_request_error", ERROR_MESSAGE);
    case "rate-limit":
      return refusal(
        429,
        "rate_limit_error",
        "This request would exceed your account's rate limit. Please try again later.",
        { "retry-after": "1" },
      );
    case "usage-limit":
    case "weekly-limit": {
      // A subscription's limit: the unified rate-limit headers of an OAuth (claude.ai) login.
      const window = scenario === "usage-limit" ? "5h" : "7d";
      const reset = String(epochSeconds(resets[scenario]));
      return refusal(429, "rate_limit_error", "Rate limit exceeded", {
        "anthropic-ratelimit-unified-status": "rejected",
        "anthropic-ratelimit-unified-reset": reset,
        [`anthropic-ratelimit-unified-${window}-status`]: "rejected",
        [`anthropic-ratelimit-unified-${window}-reset`]: reset,
        [`anthropic-ratelimit-unified-${window}-utilization`]: "1.0",
        "anthropic-ratelimit-unified-representative-claim":
          scenario === "usage-limit" ? "five_hour" : "seven_day",
      });
    }
  }
  const message = {
    id: "msg_standin",
    type: "message",
    role: "assistant",
    model: request.model ?? "claude",
    content: [] as unknown[],
    stop_reason: null as string | null,
    stop_sequence: null,
    usage: { input_tokens: ANSWER.input, output_tokens: 1 },
  };
  if (!request.stream)
    return {
      status: 200,
      body: {
        ...message,
        content: [{ type: "text", text: ANSWER.text }],
        stop_reason: "end_turn",
        usage: { input_tokens: ANSWER.input, output_tokens: ANSWER.output },
      },
    };
  return {
    // A subscription near its 5-hour limit: allowed, with a warning the CLI passes on as a rate_limit_event.
    ...(scenario === "limit-warning" && {
      headers: {
        "anthropic-ratelimit-unified-status": "allowed_warning",
        "anthropic-ratelimit-unified-reset": String(epochSeconds(resets["usage-limit"])),
        "anthropic-ratelimit-unified-5h-status": "allowed_warning",
        "anthropic-ratelimit-unified-5h-reset": String(epochSeconds(resets["usage-limit"])),
        "anthropic-ratelimit-unified-5h-utilization": "0.91",
        "anthropic-ratelimit-unified-representative-claim": "five_hour",
      },
    }),
    events: typed(
      { type: "message_start", message } as { type: string },
      { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } } as {
        type: string;
      },
      { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: ANSWER.text } } as {
        type: string;
      },
      { type: "content_block_stop", index: 0 } as { type: string },
      {
        type: "message_delta",
        delta: { stop_reason: "end_turn", stop_sequence: null },
        usage: { output_tokens: ANSWER.output },
      } as { type: string },
      { type: "message_stop" },
    ),
  };
}

// ---- OpenAI Responses API (codex) ------------------------------------------------------------------

function openai({ request, scenario, resets }: Call): Answer {
  const refusal = (status: number, error: Record<string, unknown>, headers?: Record<string, string>) => ({
    status,
    body: { error },
    headers,
  });
  switch (scenario) {
    case "error":
      return refusal(400, {
        type: "invalid_request_error",
        code: "invalid_prompt",
        message: ERROR_MESSAGE,
        param: null,
      });
    case "rate-limit":
      return refusal(
        429,
        {
          type: "rate_limit_exceeded",
          code: "rate_limit_exceeded",
          message: "Rate limit reached for requests. Please try again in 1s.",
        },
        { "retry-after": "1" },
      );
    case "usage-limit":
    case "weekly-limit":
      return refusal(429, {
        type: "usage_limit_reached",
        message: "The usage limit has been reached",
        plan_type: "plus",
        resets_at: epochSeconds(resets[scenario]),
        resets_in_seconds: secondsUntil(resets[scenario]),
      });
  }
  const response = {
    id: "resp_standin",
    object: "response",
    model: request.model ?? "gpt",
    status: "in_progress",
  };
  const message = {
    type: "message",
    id: "msg_standin",
    role: "assistant",
    status: "completed",
    content: [{ type: "output_text", text: ANSWER.text, annotations: [] }],
  };
  const usage = {
    input_tokens: ANSWER.input,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: ANSWER.output,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: ANSWER.input + ANSWER.output,
  };
  return {
    events: typed(
      { type: "response.created", response } as { type: string },
      {
        type: "response.output_item.added",
        output_index: 0,
        item: { ...message, status: "in_progress", content: [] },
      } as { type: string },
      {
        type: "response.output_text.delta",
        item_id: message.id,
        output_index: 0,
        content_index: 0,
        delta: ANSWER.text,
      } as { type: string },
      { type: "response.output_item.done", output_index: 0, item: message } as { type: string },
      {
        type: "response.completed",
        response: { ...response, status: "completed", output: [message], usage },
      } as { type: string },
    ),
  };
}

// ---- Gemini API (gemini) ---------------------------------------------------------------------------

function gemini({ path, request, scenario, resets }: Call): Answer {
  const refusal = (code: number, status: string, message: string, details: unknown[] = []) => ({
    status: code,
    body: { error: { code, message, status, details } },
  });
  // The CLI first asks a small model which model should answer (its router, not streamed), and goes on
  // without it if that fails; only the answer itself is refused, which spares a round of the CLI's retries.
  const streamed = path.includes(":streamGenerateContent");
  if (streamed)
    switch (scenario) {
      case "error":
        return refusal(400, "INVALID_ARGUMENT", ERROR_MESSAGE);
      case "rate-limit":
        // A per-minute quota: the CLI waits the retry delay and tries again, then gives up.
        return refusal(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).", [
          {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            violations: [
              {
                quotaMetric: "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                quotaId: "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
              },
            ],
          },
          { "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "1s" },
        ]);
      case "usage-limit":
      case "weekly-limit":
        // A daily quota: terminal, with the quota it hit and when to retry.
        return refusal(
          429,
          "RESOURCE_EXHAUSTED",
          "You exceeded your current quota, please check your plan and billing details.",
          [
            {
              "@type": "type.googleapis.com/google.rpc.QuotaFailure",
              violations: [
                {
                  quotaMetric: "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                  quotaId: "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
                  quotaDimensions: { location: "global", model: "gemini" },
                  quotaValue: "100",
                },
              ],
            },
            {
              "@type": "type.googleapis.com/google.rpc.RetryInfo",
              retryDelay: `${secondsUntil(resets[scenario])}s`,
            },
          ],
        );
    }
  const model = /models\/([^:]+):/.exec(path)?.[1] ?? "gemini";
  // The CLI's own calls that ask for JSON (its model router) get a JSON answer of the shape they ask for.
  const config = asObject(request.generationConfig);
  const wantsJson = config.responseMimeType === "application/json" || "responseJsonSchema" in config;
  const text = wantsJson
    ? JSON.stringify({ complexity_reasoning: "A simple task.", complexity_score: 10 })
    : ANSWER.text;
  const chunk = {
    candidates: [{ content: { parts: [{ text }], role: "model" }, finishReason: "STOP", index: 0 }],
    usageMetadata: {
      promptTokenCount: ANSWER.input,
      candidatesTokenCount: ANSWER.output,
      totalTokenCount: ANSWER.input + ANSWER.output,
    },
    modelVersion: model,
    responseId: "standin",
  };
  return streamed ? { events: [{ data: chunk }] } : { status: 200, body: chunk };
}

interface Api {
  prefix: string;
  answer: (call: Call) => Answer;
  /** Whether the request carries a key, in the header this API reads. */
  authorized: (headers: IncomingMessage["headers"]) => boolean;
  /** The API's answer to a request without one. */
  unauthorized: Answer;
}

const bearer = (headers: IncomingMessage["headers"]) => /^Bearer \S+/.test(headers.authorization ?? "");

const RESPONSES_API: Api = {
  prefix: "/v1/responses",
  answer: openai,
  authorized: bearer,
  unauthorized: {
    status: 401,
    body: {
      error: {
        type: "invalid_request_error",
        code: null,
        param: null,
        message:
          "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
      },
    },
  },
};

const API_BY_PATH: Api[] = [
  {
    prefix: "/v1/messages",
    answer: anthropic,
    authorized: (headers) => Boolean(headers["x-api-key"]) || bearer(headers),
    unauthorized: {
      status: 401,
      body: {
        type: "error",
        error: { type: "authentication_error", message: "x-api-key header is required" },
      },
    },
  },
  RESPONSES_API,
  {
    prefix: "/v1beta/models/",
    answer: gemini,
    authorized: (headers) => Boolean(headers["x-goog-api-key"]),
    unauthorized: {
      status: 403,
      body: {
        error: {
          code: 403,
          message:
            "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
          status: "PERMISSION_DENIED",
        },
      },
    },
  },
];
