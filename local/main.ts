import { ENV_KEY, ENV_URL } from "../cli/config.ts";
import { ENV } from "../core/names.ts";
import { DOCS_PATH } from "../functions/_shared/docs.ts";
import { startLocalStack } from "./stack.ts";

/** `npm start`: the whole of Switchyard on this machine. */
process.env.POWERTOOLS_LOG_LEVEL ??= "WARN";
const started = Date.now();
const stack = await startLocalStack({ port: Number(process.env[ENV.port] ?? 3000) });
console.log(`Switchyard is up in ${((Date.now() - started) / 1000).toFixed(1)} s

  API        ${stack.url}/v2   (try: curl ${stack.url}/v2/health)
  API docs   ${stack.url}${DOCS_PATH}
  Admin key  ${stack.adminKey}
  Callbacks  signed with ${stack.callbackSecret}   (set ${ENV.callbackSecret} to choose it)

For schedulerctl, in another terminal:
  export ${ENV_URL}=${stack.url} ${ENV_KEY}=${stack.adminKey}
  npx schedulerctl enqueue claude "Write a haiku about queues" --wait

Ctrl-C stops everything.`);

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, async () => {
    if (stopping) return;
    stopping = true;
    console.log("\nstopping…");
    await stack.stop();
    process.exit(0);
  });
}
