import { Logger } from "@aws-lambda-powertools/logger";
import type { Deps } from "../core/deps.ts";

/** A process's log as the use cases write it: JSON lines from a Powertools logger (POWERTOOLS_LOG_LEVEL). */
export function processLog(serviceName: string): Deps["log"] {
  const logger = new Logger({ serviceName });
  return {
    info: (message, ...extra) => logger.info(String(message), ...extra),
    warn: (message, ...extra) => logger.warn(String(message), ...extra),
    error: (message, ...extra) => logger.error(String(message), ...extra),
  };
}
