import middy from "@middy/core";
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from "aws-lambda";
import {
  type CallbackDeps,
  type CallbackRetryQueue,
  deliverCallback,
  parseEventMessage,
  redeliverySeconds,
  wantsCallback,
} from "../core/callbacks.ts";
import type { Deps } from "../core/deps.ts";
import { CALLBACK_MAX_RECEIVES, ENV } from "../core/names.ts";
import { callbackQueueFromEnv } from "../runtime/composition.ts";
import { lambdaClients, lambdaDeps } from "./_shared/composition.ts";
import { observability } from "./_shared/observability.ts";

const { logger, count, middlewares } = observability("switchyard-callbacks");

/** The default wait before the second attempt; it doubles after each failure. */
const DEFAULT_RETRY_SECONDS = 60;

/** What the callback handler runs with. */
export interface CallbackContext {
  deps: CallbackDeps & Pick<Deps, "random">;
  /** The queue the messages come from: a failed delivery's message is delayed on it. */
  retries: CallbackRetryQueue;
  /** The wait before the second attempt (see callbackRetryDelaySeconds). */
  retrySeconds: number;
  /** The queue's maxReceiveCount: the last attempt before the message moves to the dead-letter queue. */
  maxAttempts: number;
}

/** The retry wait from SWITCHYARD_CALLBACK_RETRY_SECONDS (a non-negative number), else the default. */
export function retrySecondsFrom(env: NodeJS.ProcessEnv): number {
  const value = Number(env[ENV.callbackRetrySeconds]);
  return env[ENV.callbackRetrySeconds] !== undefined && Number.isFinite(value) && value >= 0
    ? value
    : DEFAULT_RETRY_SECONDS;
}

/**
 * One record: deliver its event's callback. Returns the message id when the message must come back
 * (a retryable failure), after pushing its next receive out with exponential backoff; on the last
 * attempt it comes back at once, so that SQS moves it to the dead-letter queue without delay.
 */
async function handleRecord(ctx: CallbackContext, record: SQSRecord): Promise<string | undefined> {
  const attempt = Math.max(1, Number(record.attributes.ApproximateReceiveCount) || 1);
  let retry: boolean;
  try {
    const event = parseEventMessage(record.body);
    if (!wantsCallback(event)) return undefined;
    const result = await deliverCallback(ctx.deps, event, attempt, { maxAttempts: ctx.maxAttempts });
    retry = result.outcome === "retry";
  } catch (err) {
    // An unreadable message or a broken deployment: keep the message; it ends in the dead-letter queue.
    logger.error("callback message failed", { messageId: record.messageId, attempt, error: String(err) });
    retry = true;
  }
  if (!retry) return undefined;
  const seconds = redeliverySeconds(attempt, ctx.maxAttempts, ctx.retrySeconds, ctx.deps.random);
  await ctx.retries.delay(record.receiptHandle, seconds).catch((err: unknown) => {
    // The message still comes back, after the queue's visibility timeout.
    logger.warn("could not delay a callback message", { messageId: record.messageId, error: String(err) });
  });
  return record.messageId;
}

/**
 * The SQS-triggered callback function (partial batch responses): every record's event is delivered at
 * once, and the ones to try again are reported in `batchItemFailures`. The local stack calls the same
 * handler from its own poller (local/sqs-event-source.ts).
 */
export function callbacksHandler(getContext: () => Promise<CallbackContext>) {
  return middy<SQSEvent, SQSBatchResponse, Error, Context>()
    .use(middlewares)
    .handler(async (event) => {
      const ctx = await getContext();
      const again = await Promise.all(event.Records.map((record) => handleRecord(ctx, record)));
      const retried = again.filter((id) => id !== undefined).length;
      count({ CallbackMessagesDone: event.Records.length - retried, CallbackMessagesRetried: retried });
      return {
        batchItemFailures: again.flatMap((id) => (id === undefined ? [] : [{ itemIdentifier: id }])),
      };
    });
}

let retries: CallbackRetryQueue | undefined;

/** On AWS: the shared dependencies (with the signing key from Secrets Manager) and the callback queue. */
async function lambdaCallbackContext(): Promise<CallbackContext> {
  retries ??= callbackQueueFromEnv(lambdaClients());
  return {
    deps: await lambdaDeps(),
    retries,
    retrySeconds: retrySecondsFrom(process.env),
    maxAttempts: CALLBACK_MAX_RECEIVES,
  };
}

export const handler = callbacksHandler(lambdaCallbackContext);
