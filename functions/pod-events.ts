import middy from "@middy/core";
import type { Context, EventBridgeEvent } from "aws-lambda";
import { podStoppedFrom } from "../adapters/aws/ecs-task-events.ts";
import type { Deps } from "../core/deps.ts";
import { settlePod } from "../core/pod-runs.ts";
import { lambdaDeps } from "./_shared/composition.ts";
import { observability } from "./_shared/observability.ts";

const { logger, count, middlewares } = observability("switchyard-pod-events");

/** The event EventBridge delivers for each ECS task state change of the cluster (the rule: STOPPED only). */
export type EcsTaskStateChange = EventBridgeEvent<"ECS Task State Change", unknown>;

/**
 * Settles a pod's run when its ECS task stops (core/pod-runs.ts): the same settle as a CLI run's. A failure
 * is thrown, for EventBridge to invoke again (its retries, then the rule's dead-letter queue); a repeated
 * event changes nothing. The local stack's pods send the same events to the same handler.
 */
export function podEventsHandler(getDeps: () => Promise<Deps>) {
  return middy<EcsTaskStateChange, string, Error, Context>()
    .use(middlewares)
    .handler(async (event) => {
      const stopped = podStoppedFrom(event.detail);
      if (!stopped) return "ignored";
      const outcome = await settlePod(await getDeps(), stopped);
      logger.debug("pod stopped", { run_id: stopped.runId, exit_code: stopped.exitCode, outcome });
      count({ PodsSettled: outcome === "settled" ? 1 : 0 });
      return outcome;
    });
}

export const handler = podEventsHandler(lambdaDeps);
