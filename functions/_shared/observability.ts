import { Logger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import type { LogAttributes } from "@aws-lambda-powertools/logger/types";
import { Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import { logMetrics } from "@aws-lambda-powertools/metrics/middleware";
import { Tracer } from "@aws-lambda-powertools/tracer";
import { captureLambdaHandler } from "@aws-lambda-powertools/tracer/middleware";

/**
 * X-Ray tracing of the process: the handler's segment and every AWS SDK client given to it. It does nothing
 * outside Lambda (the local stack, the workers).
 */
export const tracer = new Tracer();

/**
 * Powertools for one function (house style): its Logger, its Metrics (CloudWatch EMF, namespace from
 * POWERTOOLS_METRICS_NAMESPACE; the local stack sets POWERTOOLS_METRICS_DISABLED) and the middy
 * middlewares that wire them and the tracer, in that order.
 */
export function observability(serviceName: string) {
  const logger = new Logger({ serviceName });
  const at =
    (level: "debug" | "info" | "error") =>
    (message: unknown, ...extra: LogAttributes[]) =>
      logger[level](String(message), ...extra);
  // Metrics warns on every invocation that adds none (most API calls): only worth a debug line.
  const metrics = new Metrics({
    serviceName,
    logger: { debug: at("debug"), info: at("info"), warn: at("debug"), error: at("error") },
  });
  return {
    logger,
    /** Publishes one pool's figures at once (a single metric each), with the dimension Pool. */
    perPool(pool: string, figures: Record<string, { value: number; unit: "Seconds" | "Count" }>) {
      const single = metrics.singleMetric();
      single.addDimension("Pool", pool);
      for (const [name, { value, unit }] of Object.entries(figures))
        single.addMetric(name, MetricUnit[unit], value);
    },
    /** Adds counts to the invocation's metrics, published when it ends (zero counts are left out). */
    count(counts: Record<string, number>) {
      for (const [name, value] of Object.entries(counts)) {
        if (value > 0) metrics.addMetric(name, MetricUnit.Count, value);
      }
    },
    middlewares: [
      injectLambdaContext(logger, { resetKeys: true }),
      logMetrics(metrics, { captureColdStartMetric: true }),
      captureLambdaHandler(tracer),
    ],
  };
}
