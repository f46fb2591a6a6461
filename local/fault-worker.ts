/**
 * The worker program the local stack runs when faults are asked for (SWITCHYARD_FAULTS, SWITCHYARD_CRASH_AT):
 * the same worker, with the fault injector on its AWS clients.
 */
import { runWorkerProcess } from "../containers/worker/process.ts";
import { awsClients } from "../runtime/composition.ts";
import { faultInjectorFrom } from "./faults.ts";

await runWorkerProcess(() => {
  const clients = awsClients();
  faultInjectorFrom()?.attach(Object.values(clients));
  return clients;
});
