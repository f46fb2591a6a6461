import {
  AccessLogFormat,
  LambdaIntegration,
  LogGroupLogDestination,
  MethodLoggingLevel,
  ResponseType,
  RestApi,
} from "aws-cdk-lib/aws-apigateway";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import { LogGroup } from "aws-cdk-lib/aws-logs";
import { NagSuppressions } from "cdk-nag";
import { Construct } from "constructs";
import type { ApiThrottle } from "../../core/config.ts";
import { ERROR_CODES, type ErrorCode } from "../../core/errors.ts";
import { staticFiles } from "../../dashboard/build.ts";
import { errorBody, HTTP_STATUS } from "../../functions/_shared/errors.ts";
import { ROUTE_GROUPS, ROUTES, type RouteGroup } from "../../functions/_shared/routes.ts";
import { LOG_RETENTION } from "../secure-defaults.ts";
import { StaticFiles } from "./static-files.ts";

export interface SchedulerApiProps {
  /** The Lambda serving each route group. */
  readonly handlers: Readonly<Record<RouteGroup, IFunction>>;
  /** Stage-wide throttling, all tenants together (scheduler.config.yaml `api.throttle`). */
  readonly throttle: ApiThrottle;
}

/** The REST API: one method per entry of ROUTES, proxied to its group's Lambda. */
export class SchedulerApi extends Construct {
  readonly api: RestApi;

  constructor(scope: Construct, id: string, { handlers, throttle }: SchedulerApiProps) {
    super(scope, id);
    const accessLogs = new LogGroup(this, "AccessLogs", { retention: LOG_RETENTION });
    this.api = new RestApi(this, "Api", {
      description: "Switchyard HTTP API (v2)",
      // File downloads answer raw bytes (base64 from Lambda); the handlers decode base64 request bodies too.
      binaryMediaTypes: ["*/*"],
      // API Gateway writes execution and access logs through this account-level role.
      cloudWatchRole: true,
      deployOptions: {
        accessLogDestination: new LogGroupLogDestination(accessLogs),
        accessLogFormat: AccessLogFormat.jsonWithStandardFields(),
        loggingLevel: MethodLoggingLevel.ERROR,
        tracingEnabled: true,
        // Per-tenant rate limits (100 requests a minute by default, `rate_limit_per_minute` per tenant) are
        // enforced by the handlers, counted in DynamoDB, the same locally and on AWS: API Gateway usage plans
        // throttle per API Gateway API key, and Switchyard's keys are its own (the admin key, tenant keys
        // stored hashed), checked by the handlers. Mirroring every tenant key into API Gateway would split
        // auth between two stores and break parity with the local stack. This stage-wide throttle is only
        // the safety net in front of Lambda and DynamoDB; past it the gateway answers 429 / 1010.
        throttlingRateLimit: throttle.rate_per_second,
        throttlingBurstLimit: throttle.burst,
      },
    });

    // The gateway checks the declared path parameters, and bodies against a request model where a method
    // has one (none yet): the handlers' zod schemas stay the authority on bodies.
    const requestValidator = this.api.addRequestValidator("Validator", {
      validateRequestParameters: true,
      validateRequestBody: true,
    });
    const integrations = Object.fromEntries(
      ROUTE_GROUPS.map((group) => [
        group,
        new LambdaIntegration(handlers[group], { allowTestInvoke: false }),
      ]),
    ) as Record<RouteGroup, LambdaIntegration>;

    for (const route of ROUTES) {
      const params = [...route.path.matchAll(/\{(\w+)\+?\}/g)].map((m) => `method.request.path.${m[1]}`);
      this.api.root.resourceForPath(route.path).addMethod(route.method, integrations[route.group], {
        requestValidator,
        requestParameters: Object.fromEntries(params.map((p) => [p, true])),
      });
    }

    new StaticFiles(this, "Files", { api: this.api, files: staticFiles() });

    // Answers API Gateway gives itself (before any Lambda) in the same envelope as the handlers.
    const gatewayAnswers: [ResponseType, ErrorCode, string][] = [
      // API Gateway says "Missing Authentication Token" for a path or method no route has.
      [ResponseType.MISSING_AUTHENTICATION_TOKEN, ERROR_CODES.routeNotFound, "no such route"],
      [ResponseType.BAD_REQUEST_PARAMETERS, ERROR_CODES.validation, "path: a parameter is missing"],
      [ResponseType.THROTTLED, ERROR_CODES.rateLimited, "rate limited; slow down"],
      [ResponseType.REQUEST_TOO_LARGE, ERROR_CODES.payloadTooLarge, "body: too large"],
      [ResponseType.DEFAULT_5XX, ERROR_CODES.system, "internal error"],
    ];
    for (const [type, code, message] of gatewayAnswers) {
      this.api.addGatewayResponse(`Answer${type.responseType}`, {
        type,
        statusCode: String(HTTP_STATUS[code]),
        templates: { "application/json": errorBody(code, message) },
      });
    }

    NagSuppressions.addResourceSuppressions(
      this.api,
      [
        {
          id: "AwsSolutions-IAM4",
          reason:
            "AmazonAPIGatewayPushToCloudWatchLogs is the AWS-maintained policy of the account-level role " +
            "that API Gateway needs to write the stage's execution and access logs.",
          appliesTo: [
            "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs",
          ],
        },
        ...["AwsSolutions-APIG4", "AwsSolutions-COG4"].map((id) => ({
          id,
          reason:
            "Clients are not Cognito users: they send an API key (Authorization: Bearer or x-api-key) that the " +
            "handlers verify, either the admin key or a tenant key stored hashed in DynamoDB and scoped to its " +
            "tenant. GET /v2/health, /v2/openapi.json and the docs at /v2/docs are public by design.",
        })),
      ],
      true,
    );
  }
}
