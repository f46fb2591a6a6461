import middy from "@middy/core";
import type { Context, SQSBatchResponse, SQSEvent } from "aws-lambda";
import { decodeDispatch } from "../core/admission.ts";
import type { Deps } from "../core/deps.ts";
import { launchPod } from "../core/pod-runs.ts";
import { lambdaDeps } from "./_shared/composition.ts";
import { observability } from "./_shared/observability.ts";

const { logger, count, middlewares } = observability("switchyard-pod-launcher");

/**
 * A container pool's queue consumer (partial batch responses): each dispatch's run is claimed and its pod
 * started (core/pod-runs.ts). A dispatch that failed comes back after the queue's visibility timeout, and
 * is dropped as stale if its claim had been written; the tick then ends the run when its lease passes.
 * The local stack calls the same handler from its own poller.
 */
export function podLauncherHandler(getDeps: () => Promise<Deps>) {
  return middy<SQSEvent, SQSBatchResponse, Error, Context>()
    .use(middlewares)
    .handler(async (event) => {
      const deps = await getDeps();
      const failed: string[] = [];
      const outcomes = await Promise.all(
        event.Records.map(async (record) => {
          const dispatch = decodeDispatch(record.body);
          if (!dispatch) {
            logger.warn("dropped a malformed dispatch", { body: record.body.slice(0, 200) });
            return "dropped";
          }
          try {
            const outcome = await launchPod(deps, dispatch);
            logger.debug("pod dispatch", { run_id: dispatch.run_id, outcome });
            return outcome;
          } catch (err) {
            logger.error("pod launch failed; the dispatch comes back", {
              run_id: dispatch.run_id,
              error: String(err),
            });
            failed.push(record.messageId);
            return "failed";
          }
        }),
      );
      count({
        PodsStarted: outcomes.filter((o) => o === "started").length,
        PodsNotStarted: outcomes.filter((o) => o === "not started").length,
      });
      return { batchItemFailures: failed.map((itemIdentifier) => ({ itemIdentifier })) };
    });
}

export const handler = podLauncherHandler(lambdaDeps);
