import { Stack, type StackProps } from "aws-cdk-lib";
import { AttributeType, ProjectionType, TableV2 } from "aws-cdk-lib/aws-dynamodb";
import { Bucket } from "aws-cdk-lib/aws-s3";
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

    // S3 server access logs of the artifacts bucket, under `logs/` so they expire like run logs.
    const accessLogs = new Bucket(this, "AccessLogs", bucketDefaults);
    this.bucket = new Bucket(this, "Artifacts", {
      ...bucketDefaults,
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: "logs/",
    });
  }
}
