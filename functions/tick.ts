import middy from "@middy/core";
import { tick } from "../core/tick.ts";
import { lambdaDeps } from "./_shared/composition.ts";
import { observability } from "./_shared/observability.ts";

const { logger, count, middlewares } = observability("switchyard-tick");

/** Runs one tick; EventBridge invokes it every minute. */
export const handler = middy()
  .use(middlewares)
  .handler(async () => {
    const report = await tick(await lambdaDeps());
    logger.info("tick", { ...report });
    count({
      DueTasksStarted: report.started,
      OccurrencesFired: report.fired,
      DispatchesResent: report.resent,
      LeasesReclaimed: report.reclaimed,
      TasksAdmittedByTick: report.admitted,
    });
    return report;
  });
