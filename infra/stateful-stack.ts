import { Stack, type StackProps } from "aws-cdk-lib";
import { AttributeType, ProjectionType, TableV2 } from "aws-cdk-lib/aws-dynamodb";
import { Bucket } from "aws-cdk-lib/aws-s3";
import { Secret } from "aws-cdk-lib/aws-secretsmanager";
import { NagSuppressions } from "cdk-nag";
import type { Construct } from "constructs";
import { TABLE } from "../core/names.ts";
import { bucketDefaults, tableDefaults } from "./secure-defaults.ts";

export interface StatefulStackProps extends StackProps {
  /** DynamoDB deletion protection; turn it off only for throwaway environments. @default true */
  readonly deletionProtection?: boolean;
}

/** Data that outlives deployments: the table and the artifacts bucket (both retained on stack deletion). */
export class StatefulStack extends Stack {
  readonly table: TableV2;
  /** Run logs (`logs/`, expiring) and task input/output files. */
  readonly bucket: Bucket;
  /** The admin API key, generated at first deploy. Read it with `aws secretsmanager get-secret-value`. */
  readonly adminKey: Secret;

  constructor(scope: Construct, id: string, props: StatefulStackProps = {}) {
    super(scope, id, props);

    const key = (name: string) => ({ name, type: AttributeType.STRING });
    this.table = new TableV2(this, "Table", {
      ...tableDefaults,
      partitionKey: key(TABLE.partitionKey),
      sortKey: key(TABLE.sortKey),
      deletionProtection: props.deletionProtection ?? true,
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

    // S3 server access logs of the artifacts bucket, under `logs/` so they expire like run logs.
    const accessLogs = new Bucket(this, "AccessLogs", bucketDefaults);
    this.bucket = new Bucket(this, "Artifacts", {
      ...bucketDefaults,
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: "logs/",
    });
  }
}
