import { awsClients } from "../../runtime/composition.ts";
import { runWorkerProcess } from "./process.ts";

/** Entry point of the worker: a Fargate task, a child process of the local stack, or a self-hosted worker. */
await runWorkerProcess(awsClients);
