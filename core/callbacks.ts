/**
 * Callbacks: when a run ends, the task's callback URL receives `{name, uuid, runid, status, message}`
 * (core/events.ts callbackBody), POSTed as JSON and signed with HMAC-SHA256 over `<timestamp>.<body>`:
 *
 *     x-switchyard-signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
 *
 * The callback function (functions/callbacks.ts) calls deliverCallback for each run-end event from its SQS
 * subscription to the topic. Every attempt is recorded on the task (`callback_deliveries`, the latest 20).
 * The URL passes the SSRF guard again at delivery (core/ssrf.ts), and the request connects only to the
 * addresses the guard vetted. No redirect is followed.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import type { Deps } from "./deps.ts";
import { callbackBody, type DomainEvent, RUN_END_TYPES } from "./events.ts";
import { retryOnConflict } from "./optimistic.ts";
import type { CallbackDelivery, Task } from "./records.ts";
import { CallbackRefused, type CallbackTarget, resolveCallbackTarget } from "./ssrf.ts";

export const CALLBACK_HEADERS = {
  signature: "x-switchyard-signature",
  /** The event's id: the same for every attempt of one event, so receivers can drop duplicates. */
  eventId: "x-switchyard-event-id",
  eventType: "x-switchyard-event-type",
  attempt: "x-switchyard-delivery-attempt",
} as const;

/** Attempts kept on the task; older ones are dropped. */
export const MAX_RECORDED_DELIVERIES = 20;
/** A receiver must answer within this long. */
export const DELIVERY_TIMEOUT_MS = 10_000;
/** The longest wait between two attempts. */
export const MAX_RETRY_DELAY_SECONDS = 900;
/** Recorded errors are cut to this length. */
const ERROR_CHARS = 300;

export type CallbackDeps = Pick<
  Deps,
  "tasks" | "clock" | "log" | "callbackPolicy" | "callbackSecret" | "resolve" | "webhooks"
>;

export type DeliveryResult =
  | { outcome: "delivered"; httpStatus: number }
  /** Worth another attempt later: a network error, a timeout, an answer other than 2xx (but 410). */
  | { outcome: "retry"; httpStatus?: number; error: string }
  /** Never worth another attempt: the URL is refused, or the receiver answered 410 Gone. */
  | { outcome: "failed"; httpStatus?: number; error: string };

export interface DeliveryOptions {
  timeoutMs?: number;
  /** The attempt after which a retryable failure is final (the message goes to the dead-letter queue). */
  maxAttempts?: number;
}

/** The callback queue, as the callback function uses it: an undelivered message comes back after `seconds`. */
export interface CallbackRetryQueue {
  delay(receiptHandle: string, seconds: number): Promise<void>;
}

/** Whether an event is one a callback receives: a run ended, and the task has a callback URL. */
export const wantsCallback = (event: DomainEvent): event is DomainEvent & { callback: string } =>
  typeof event.callback === "string" && event.callback !== "" && RUN_END_TYPES.includes(event.type);

const hmac = (secret: string, payload: string) => createHmac("sha256", secret).update(payload).digest("hex");

/** The signature header's value for `body` sent at `timestampSeconds`. */
export function signatureHeader(secret: string, body: string, timestampSeconds: number): string {
  return `t=${timestampSeconds},v1=${hmac(secret, `${timestampSeconds}.${body}`)}`;
}

/**
 * For receivers and tests: whether `header` (the x-switchyard-signature value) signs `body` (the raw
 * request body, exactly as received) with `secret`, at a time within `toleranceSeconds` of now. Any of
 * several `v1=` values may match. The comparison takes constant time.
 */
export function verifySignature(
  secret: string,
  header: string | undefined,
  body: string,
  toleranceSeconds = 300,
  nowSeconds = Math.floor(Date.now() / 1000),
): boolean {
  if (!header || !secret) return false;
  let timestamp: string | undefined;
  const signatures: Buffer[] = [];
  for (const part of header.split(",")) {
    const eq = part.indexOf("=");
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === "t") timestamp = value;
    else if (key === "v1" && /^[0-9a-f]{64}$/i.test(value)) signatures.push(Buffer.from(value, "hex"));
  }
  if (!timestamp || !/^\d{1,12}$/.test(timestamp)) return false;
  if (Math.abs(nowSeconds - Number(timestamp)) > toleranceSeconds) return false;
  const expected = Buffer.from(hmac(secret, `${timestamp}.${body}`), "hex");
  // Compare against every candidate, without stopping early.
  return signatures.reduce((ok, signature) => timingSafeEqual(signature, expected) || ok, false);
}

/**
 * The wait before attempt `attempt + 1`: `baseSeconds` doubled per attempt, ±20 % jitter, at most
 * MAX_RETRY_DELAY_SECONDS.
 */
export function callbackRetryDelaySeconds(
  attempt: number,
  baseSeconds: number,
  random: () => number,
): number {
  const exponential = baseSeconds * 2 ** Math.max(0, attempt - 1);
  const jittered = exponential * (0.8 + 0.4 * random());
  return Math.min(MAX_RETRY_DELAY_SECONDS, Math.round(jittered));
}

/**
 * When the queue should hand a failed delivery's message back: after the backoff, or at once after the
 * last attempt, so that the queue moves it to its dead-letter queue without waiting.
 */
export const redeliverySeconds = (
  attempt: number,
  maxAttempts: number,
  baseSeconds: number,
  random: () => number,
): number => (attempt >= maxAttempts ? 0 : callbackRetryDelaySeconds(attempt, baseSeconds, random));

/**
 * POSTs the event's callback body to its callback URL, once, and records the attempt on the task.
 * `attempt` counts from 1 (the SQS receive count). Throws only when no signing secret is configured.
 */
export async function deliverCallback(
  deps: CallbackDeps,
  event: DomainEvent,
  attempt: number,
  options: DeliveryOptions = {},
): Promise<DeliveryResult> {
  if (!event.callback) return { outcome: "failed", error: "the task has no callback URL" };
  if (!deps.callbackSecret) throw new Error("no callback signing secret is configured");
  const result = await attemptDelivery(deps, event, event.callback, attempt, options);
  const final = result.outcome === "retry" && attempt >= (options.maxAttempts ?? Number.POSITIVE_INFINITY);
  const delivery: CallbackDelivery = {
    time: deps.clock.now().toISOString(),
    event_id: event.id,
    type: event.type,
    run_id: event.run_id,
    attempt,
    outcome: final ? "failed" : result.outcome,
    http_status: result.httpStatus,
    error:
      result.outcome === "delivered"
        ? undefined
        : final
          ? `${result.error}; gave up after ${attempt} attempts, the event is in the dead-letter queue`
          : result.error,
  };
  await recordDelivery(deps, event.task_uuid, delivery);
  const facts = { task: event.task_uuid, ...delivery };
  if (result.outcome === "delivered") deps.log.info("callback delivered", facts);
  else deps.log.warn("callback not delivered", facts);
  return result;
}

async function attemptDelivery(
  deps: CallbackDeps,
  event: DomainEvent,
  url: string,
  attempt: number,
  options: DeliveryOptions,
): Promise<DeliveryResult> {
  let target: CallbackTarget;
  try {
    target = await resolveCallbackTarget(url, deps.callbackPolicy, deps.resolve);
  } catch (err) {
    if (err instanceof CallbackRefused) return { outcome: "failed", error: `refused: ${err.problem}` };
    return { outcome: "retry", error: `could not resolve the host: ${errorText(err)}` };
  }
  const body = JSON.stringify(callbackBody(event));
  const timestamp = Math.floor(deps.clock.now().getTime() / 1000);
  const headers = {
    "content-type": "application/json",
    "user-agent": "Switchyard-Callbacks/1",
    [CALLBACK_HEADERS.signature]: signatureHeader(deps.callbackSecret, body, timestamp),
    [CALLBACK_HEADERS.eventId]: event.id,
    [CALLBACK_HEADERS.eventType]: event.type,
    [CALLBACK_HEADERS.attempt]: String(attempt),
  };
  let status: number;
  try {
    status = await deps.webhooks.post(target, {
      body,
      headers,
      timeoutMs: options.timeoutMs ?? DELIVERY_TIMEOUT_MS,
    });
  } catch (err) {
    return { outcome: "retry", error: errorText(err) };
  }
  if (status >= 200 && status < 300) return { outcome: "delivered", httpStatus: status };
  if (status === 410)
    return { outcome: "failed", httpStatus: status, error: "HTTP 410: the receiver is gone" };
  const redirect = status >= 300 && status < 400 ? " (redirects are not followed)" : "";
  return { outcome: "retry", httpStatus: status, error: `HTTP ${status}${redirect}` };
}

/**
 * Appends the attempt to the task's `callback_deliveries` (the latest MAX_RECORDED_DELIVERIES), with the
 * task's optimistic version; nothing else changes. Recording is not a transition, so it emits no event.
 * A failure to record is logged, never retried as a delivery: the receiver may already have the event.
 */
async function recordDelivery(deps: CallbackDeps, taskUuid: string, delivery: CallbackDelivery) {
  try {
    await retryOnConflict(async () => {
      const task = await deps.tasks.getTask(taskUuid);
      if (!task) return;
      const next: Task = {
        ...task,
        version: task.version + 1,
        callback_deliveries: [...(task.callback_deliveries ?? []), delivery].slice(-MAX_RECORDED_DELIVERIES),
      };
      await deps.tasks.commit({ tasks: [{ next, expectVersion: task.version }] });
    }, 10);
  } catch (err) {
    deps.log.error("could not record a callback delivery", { task: taskUuid, error: errorText(err) });
  }
}

function errorText(err: unknown): string {
  const code = (err as { code?: unknown })?.code;
  const message = err instanceof Error ? err.message : String(err);
  // A connection tried on several addresses fails with an AggregateError whose message may be empty.
  const text =
    typeof code === "string" && !message.includes(code)
      ? [code, message].filter(Boolean).join(": ")
      : message;
  return text.slice(0, ERROR_CHARS);
}

/**
 * The DomainEvent in a message of the callback queue: the raw event (raw message delivery), or an SNS
 * envelope around it. Throws when it is neither.
 */
export function parseEventMessage(body: string): DomainEvent {
  let value: unknown = JSON.parse(body);
  const envelope = value as { Type?: unknown; Message?: unknown };
  if (envelope?.Type === "Notification" && typeof envelope.Message === "string") {
    value = JSON.parse(envelope.Message);
  }
  const event = value as Partial<DomainEvent> | null;
  if (
    typeof event?.id !== "string" ||
    typeof event.type !== "string" ||
    typeof event.task_uuid !== "string" ||
    typeof event.status !== "string"
  ) {
    throw new Error("the message is not an event");
  }
  return event as DomainEvent;
}
