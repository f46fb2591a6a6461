import { LogGroupLogDestination, WebSocketApi, WebSocketStage } from "aws-cdk-lib/aws-apigatewayv2";
import { WebSocketLambdaIntegration } from "aws-cdk-lib/aws-apigatewayv2-integrations";
import type { IGrantable } from "aws-cdk-lib/aws-iam";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import { LogGroup } from "aws-cdk-lib/aws-logs";
import { NagSuppressions } from "cdk-nag";
import { Construct, type IConstruct } from "constructs";
import type { ApiThrottle } from "../../core/config.ts";
import { LOG_RETENTION } from "../secure-defaults.ts";

export interface RunStreamApiProps {
  /** functions/run-stream.ts: checks the key and the run, and keeps the connection with it. */
  readonly connect: IFunction;
  /** As the REST API's stage: connections and frames, all tenants together. */
  readonly throttle: ApiThrottle;
}

/**
 * Workflow runs' live results: an API Gateway WebSocket API whose `$connect` opens a run's stream. Frames
 * go out only through the management API (the workflows functions push them); a client sends none.
 */
export class RunStreamApi extends Construct {
  readonly api: WebSocketApi;
  readonly stage: WebSocketStage;
  /** Where a client opens a run's stream (SWITCHYARD_STREAM_URL): the stage's URL with the ids as its query. */
  readonly streamUrl: string;

  constructor(scope: Construct, id: string, { connect, throttle }: RunStreamApiProps) {
    super(scope, id);
    this.api = new WebSocketApi(this, "Api", {
      description: "Switchyard workflow runs' live results (v2)",
      connectRouteOptions: { integration: new WebSocketLambdaIntegration("Connect", connect) },
    });
    const accessLogs = new LogGroup(this, "AccessLogs", { retention: LOG_RETENTION });
    this.stage = new WebSocketStage(this, "Stage", {
      webSocketApi: this.api,
      stageName: "v2",
      autoDeploy: true,
      throttle: { rateLimit: throttle.rate_per_second, burstLimit: throttle.burst },
      accessLogSettings: { destination: new LogGroupLogDestination(accessLogs) },
    });
    this.streamUrl = `${this.stage.url}?workflow_id={id}&run_id={run_id}`;
    NagSuppressions.addResourceSuppressions(
      this.api,
      [
        {
          id: "AwsSolutions-APIG4",
          reason:
            "The $connect function authenticates: the API key (Authorization: Bearer, or the `key` " +
            "subprotocol a browser can send) checked as on every REST route, and the run's tenant; a " +
            "refused connection never opens. No other route exists: clients send no frames.",
        },
      ],
      true,
    );
  }

  /** Lets a function push frames to, and close, the stream's connections. */
  grantPush(
    fn: IGrantable & IConstruct & { addEnvironment(name: string, value: string): unknown },
    envName: string,
  ) {
    this.stage.grantManagementApiAccess(fn);
    fn.addEnvironment(envName, this.stage.callbackUrl);
    NagSuppressions.addResourceSuppressions(
      fn,
      [
        {
          id: "AwsSolutions-IAM5",
          reason:
            "grantManagementApiAccess: the management API of this WebSocket API's v2 stage only; the " +
            "wildcards are the connection ids (made by API Gateway per client) and the method (POST a frame, " +
            "DELETE a connection).",
          appliesTo: [
            { regex: "/^Resource::arn:.*:execute-api:.*StreamApi.*\\/v2\\/\\*\\/@connections\\/\\*$/" },
          ],
        },
      ],
      true,
    );
  }
}
