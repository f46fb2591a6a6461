import { CfnOutput, Stack, type StackProps } from "aws-cdk-lib";
import { AttributeType, ProjectionType, StreamViewType, TableV2 } from "aws-cdk-lib/aws-dynamodb";
import { Bucket } from "aws-cdk-lib/aws-s3";
import { Secret } from "aws-cdk-lib/aws-secretsmanager";
import { NagSuppressions } from "cdk-nag";
import type { Construct } from "constructs";
import type { PoolConfig } from "../core/config.ts";
import { TABLE } from "../core/names.ts";
import { PoolCredentials } from "./constructs/pool-credentials.ts";
import { bucketDefaults, tableDefaults } from "./secure-defaults.ts";

export interface StatefulStackProps extends StackProps {
  /** DynamoDB deletion protection; turn it off only for throwaway environments. @default true */
  readonly deletionProtection?: boolean;
  /** The pools: one credentials secret per (tool, account) among them. */
  readonly pools: readonly PoolConfig[];
}

/**
 * Data that outlives deployments: the table and the artifacts bucket (both retained on stack deletion),
 * the admin key and the pool accounts' credentials (what an operator put in them must survive a redeploy
 * of the compute stack).
 */
export class StatefulStack extends Stack {
  readonly table: TableV2;
  /** Run logs (`logs/`, expiring) and task input/output files. */
  readonly bucket: Bucket;
  /** The admin API key, generated at first deploy. Read it with `aws secretsmanager get-secret-value`. */
  readonly adminKey: Secret;
  /** The HMAC key that signs callbacks; stateful, because webhook receivers verify with it. */
  readonly callbackKey: Secret;
  readonly credentials: PoolCredentials;

  constructor(scope: Construct, id: string, props: StatefulStackProps) {
    super(scope, id, props);

    const key = (name: string) => ({ name, type: AttributeType.STRING });
    this.table = new TableV2(this, "Table", {
      ...tableDefaults,
      partitionKey: key(TABLE.partitionKey),
      sortKey: key(TABLE.sortKey),
      deletionProtection: props.deletionProtection ?? true,
      // New images only: the events relay reads the event items (the outbox) as they are inserted.
      dynamoStream: StreamViewType.NEW_IMAGE,
      globalSecondaryIndexes: Object.values(TABLE.indexes).map((index) => ({
        indexName: index.name,
        partitionKey: key(index.partitionKey),
        sortKey: key(index.sortKey),
        projectionType: ProjectionType.ALL,
      })),
    });

    this.adminKey = new Secret(this, "AdminKey", {
      description: "Switchyard admin API key",
      generateSecretString: { excludePunctuation: true, passwordLength: 48 },
    });
    NagSuppressions.addResourceSuppressions(this.adminKey, [
      {
        id: "AwsSolutions-SMG4",
        reason:
          "An API key, not a database credential: there is no service to rotate it against. Rotate it by " +
          "putting a new value; functions read it at their next cold start.",
      },
    ]);
    this.callbackKey = new Secret(this, "CallbackSigningKey", {
      description:
        "Switchyard: the HMAC-SHA256 key that signs task callbacks; webhook receivers verify with it",
      generateSecretString: { excludePunctuation: true, passwordLength: 48 },
    });
    NagSuppressions.addResourceSuppressions(this.callbackKey, [
      {
        id: "AwsSolutions-SMG4",
        reason:
          "A webhook signing key shared with the receivers, not a database credential: a rotation must be " +
          "coordinated with them (put a new value, then update the receivers); the callbacks function reads " +
          "it at its next cold start.",
      },
    ]);
    new CfnOutput(this, "CallbackSigningKeySecretArn", {
      description: "Secret holding the key that signs callbacks (HMAC-SHA256), for webhook receivers",
      value: this.callbackKey.secretArn,
    });
    new CfnOutput(this, "TableName", {
      description: "The DynamoDB table (SWITCHYARD_TABLE for npm run migrate)",
      value: this.table.tableName,
    });
    new CfnOutput(this, "AdminKeySecretArn", {
      description: "Secret holding the admin API key: aws secretsmanager get-secret-value --secret-id <arn>",
      value: this.adminKey.secretArn,
    });
    this.credentials = new PoolCredentials(this, "Credentials", { pools: props.pools });

    // S3 server access logs of the artifacts bucket, under `logs/` so they expire like run logs.
    const accessLogs = new Bucket(this, "AccessLogs", bucketDefaults);
    this.bucket = new Bucket(this, "Artifacts", {
      ...bucketDefaults,
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: "logs/",
    });
  }
}
