import { lambdaDeps } from "../_shared/composition.ts";
import { apiHandler } from "../_shared/http.ts";
import { ROUTES } from "../_shared/routes.ts";

/** The API's Lambda entry: each route group's function runs it; API Gateway sends each only its group's routes. */
export const handler = apiHandler(ROUTES, lambdaDeps);
