/**
 * A process that runs one step of Switchyard against the emulators and dies at a crash point
 * (SWITCHYARD_CRASH_AT): `tick [seconds ahead]`, or `submit <prompt>` to pool `p`. Its environment names
 * the resources; a tick ahead of time sees what will be due then.
 */

import { submitTaskSchema } from "../../core/requests.ts";
import { submitTask } from "../../core/tasks.ts";
import { tick } from "../../core/tick.ts";
import { localClients } from "../../local/aws-clients.ts";
import { faultInjectorFrom } from "../../local/faults.ts";
import { depsFromEnv } from "../../runtime/composition.ts";
import { loadSchedulerConfig } from "../../runtime/scheduler-config.ts";
import { ADMIN } from "./memory-deps.ts";

const endpoints = JSON.parse(process.env.CRASH_CHILD_ENDPOINTS ?? "{}");
const clients = localClients(endpoints);
faultInjectorFrom()?.attach(Object.values(clients));
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const [step, argument = ""] = process.argv.slice(2);
const aheadMs = step === "tick" ? Number(argument || 0) * 1000 : 0;
const deps = {
  ...depsFromEnv(clients, quiet, loadSchedulerConfig(process.env)),
  clock: { now: () => new Date(Date.now() + aheadMs) },
};
if (step === "tick") await tick(deps);
else await submitTask(deps, ADMIN, submitTaskSchema.parse({ pool: "p", prompt: argument }));
