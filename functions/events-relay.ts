import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import middy from "@middy/core";
import type { DynamoDBStreamEvent } from "aws-lambda";
import { eventsOfLogItem } from "../adapters/table/keys.ts";
import type { DomainEvent } from "../core/events.ts";
import { EVENT_SORT_KEY_PREFIX } from "../core/names.ts";
import type { EventBus } from "../core/ports.ts";
import { eventBusFromEnv } from "../runtime/composition.ts";
import { lambdaClients } from "./_shared/composition.ts";
import { observability } from "./_shared/observability.ts";

const { count, middlewares } = observability("switchyard-events");

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
 * (at least once; each event has a unique id for subscribers that dedupe).
 */
export function relayHandler(bus: EventBus) {
  return async (stream: DynamoDBStreamEvent) => {
    const events = eventsOfStream(stream);
    if (events.length) await bus.publish(events);
    return { published: events.length };
  };
}

let bus: EventBus | undefined;

export const handler = middy<DynamoDBStreamEvent>()
  .use(middlewares)
  .handler(async (stream) => {
    bus ??= eventBusFromEnv(lambdaClients());
    const result = await relayHandler(bus)(stream);
    count({ EventsPublished: result.published });
    return result;
  });
