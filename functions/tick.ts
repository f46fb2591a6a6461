import { Logger } from "@aws-lambda-powertools/logger";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import middy from "@middy/core";
import { tick } from "../core/tick.ts";
import { lambdaDeps } from "./_shared/composition.ts";

const logger = new Logger({ serviceName: "switchyard-tick" });

/** Runs one tick; EventBridge invokes it every minute. */
export const handler = middy()
  .use(injectLambdaContext(logger))
  .handler(async () => {
    const report = await tick(await lambdaDeps());
    logger.info("tick", { ...report });
    return report;
  });
