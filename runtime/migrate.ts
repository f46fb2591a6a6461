/**
 * `npm run migrate`: brings the table named by SWITCHYARD_TABLE up to the current item layout (today:
 * see adapters/aws/table-backfill.ts). Uses the standard AWS credentials and region (or
 * AWS_ENDPOINT_URL); safe to run again, and beside live traffic.
 */
import { backfillTable } from "../adapters/aws/table-backfill.ts";
import { ENV } from "../core/names.ts";
import { awsClients } from "./composition.ts";

const tableName = process.env[ENV.tableName];
if (!tableName) throw new Error(`${ENV.tableName} is not set`);
const report = await backfillTable(awsClients().doc, tableName);
console.log(
  `${tableName}: ${report.scanned} task and run items read, ${report.moved} brought up to date ` +
    `(${report.counted} open tasks counted on their concurrency key)`,
);
