import { ENV } from "../../core/names.ts";
import { ssmConfigSource } from "../../runtime/scheduler-config.ts";
import { lambdaDeps } from "../_shared/composition.ts";
import { apiHandler } from "../_shared/http.ts";
import { ROUTES } from "../_shared/routes.ts";

/** Where POST /v2/reload reads the config: the SSM parameter the stack gives the pools group's function. */
const parameter = process.env[ENV.configParameter];
const configSource = parameter === undefined ? undefined : ssmConfigSource(parameter);

/** The API's Lambda entry: each route group's function runs it; API Gateway sends each only its group's routes. */
export const handler = apiHandler(ROUTES, () => lambdaDeps(configSource));
