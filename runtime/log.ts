import { Logger } from "@aws-lambda-powertools/logger";
import type { Deps } from "../core/deps.ts";

/** The use cases' log on a Powertools logger: JSON lines (POWERTOOLS_LOG_LEVEL). */
export function loggerLog(logger: Logger): Deps["log"] {
  return {
    info: (message, ...extra) => logger.info(String(message), ...extra),
    warn: (message, ...extra) => logger.warn(String(message), ...extra),
    error: (message, ...extra) => logger.error(String(message), ...extra),
  };
}

/** A process's log, under its service name. */
export const processLog = (serviceName: string) => loggerLog(new Logger({ serviceName }));
