import middy from "@middy/core";
import { measureSlas } from "../core/slas.ts";
import { tick } from "../core/tick.ts";
import { lambdaDeps } from "./_shared/composition.ts";
import { observability } from "./_shared/observability.ts";

const { logger, count, perPool, middlewares } = observability("switchyard-tick");

/**
 * Runs one tick; EventBridge invokes it every minute. It also measures each pool's SLA (core/slas.ts) as
 * the metrics SlaWaitSeconds and SlaMissed (dimension Pool), which the SLA alarms watch.
 */
export const handler = middy()
  .use(middlewares)
  .handler(async () => {
    const deps = await lambdaDeps();
    const report = await tick(deps);
    for (const sla of await measureSlas(deps)) {
      if (sla.met === null || sla.measured_wait_s === null) continue;
      perPool(sla.pool, {
        SlaWaitSeconds: { value: sla.measured_wait_s, unit: "Seconds" },
        SlaMissed: { value: sla.met ? 0 : 1, unit: "Count" },
      });
    }
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
