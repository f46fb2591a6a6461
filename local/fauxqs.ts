import { startFauxqs } from "fauxqs";
import type { RunningEmulator } from "./dynamodb-local.ts";

/** Starts fauxqs (SQS, SNS and S3 on one port, in memory) in this process; port 0 picks a free one. */
export async function startFauxqsServer(options: { port?: number } = {}): Promise<RunningEmulator> {
  const server = await startFauxqs({ port: options.port ?? 0, logger: false });
  return { endpoint: `http://127.0.0.1:${server.port}`, stop: () => server.stop() };
}
