import { awsClients } from "../../runtime/composition.ts";
import { runWorkerProcess } from "./process.ts";

/** Entry point of the worker (the Fargate task, or a child process of the local stack). */
await runWorkerProcess(awsClients());
