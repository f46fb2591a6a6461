import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import middy from "@middy/core";
import type { DynamoDBStreamEvent } from "aws-lambda";
import { eventsOfLogItem } from "../adapters/table/keys.ts";
import type { Deps } from "../core/deps.ts";
import type { DomainEvent } from "../core/events.ts";
import { relayed } from "../core/heartbeats.ts";
import { EVENT_SORT_KEY_PREFIX } from "../core/names.ts";
import type { EventBus, HeartbeatStore } from "../core/ports.ts";
import { eventBusFromEnv, relayBeatsFromEnv } from "../runtime/composition.ts";
import { loggerLog } from "../runtime/log.ts";
import { lambdaClients } from "./_shared/composition.ts";
import { observability } from "./_shared/observability.ts";

const { count, middlewares, logger } = observability("switchyard-events");

/** The events of a stream batch: those of the new event log items (sort key EVENT#). */
export function eventsOfStream(stream: DynamoDBStreamEvent): DomainEvent[] {
  return stream.Records.flatMap((record) => {
    const image = record.dynamodb?.NewImage;
    if (record.eventName !== "INSERT" || !image?.sk?.S?.startsWith(EVENT_SORT_KEY_PREFIX)) return [];
    // The Lambda event's attribute-value type and the SDK's describe the same wire format.
    return eventsOfLogItem(unmarshall(image as unknown as Record<string, AttributeValue>));
  });
}

/**
 * The outbox relay: events are written with the transitions they describe; the table's stream brings
 * them here and they go to SNS in batches. A failed publish fails the batch, and the stream retries it
 * (at least once; each event has a unique id for subscribers that dedupe). It reports its lag (how long the
 * oldest event of a batch waited to be published) for GET /v2/status.
 */
export function relayHandler(bus: EventBus, beats: RelayBeats) {
  return async (stream: DynamoDBStreamEvent) => {
    const events = eventsOfStream(stream);
    if (events.length) {
      await bus.publish(events);
      await relayed(beats, events);
    }
    return { published: events.length };
  };
}

/** Where the relay reports itself. */
export type RelayBeats = { heartbeats: HeartbeatStore } & Pick<Deps, "clock" | "log">;

let bus: EventBus | undefined;
let beats: RelayBeats | undefined;

export const handler = middy<DynamoDBStreamEvent>()
  .use(middlewares)
  .handler(async (stream) => {
    bus ??= eventBusFromEnv(lambdaClients());
    beats ??= relayBeatsFromEnv(lambdaClients(), loggerLog(logger));
    const result = await relayHandler(bus, beats)(stream);
    count({ EventsPublished: result.published });
    return result;
  });
