/**
 * The API's routes: which method and path reach which handler, and the 404 and 405 answers.
 * Every route but the OpenAPI document wants a caller, found before the path is matched.
 */
import { ApiError } from "./apiError.js";

export interface ApiRequest {
  method: string;
  path: string;
  query: Record<string, string | undefined>;
  headers: Record<string, string | undefined>;
  /** The body as received. */
  rawBody?: Buffer;
}

export interface ApiResponse {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

/** What each route does, given the caller's user id. */
export interface EditRoutes {
  openApiDocument(): ApiResponse;
  listModels(userId: string): ApiResponse;
  listEdits(userId: string): Promise<ApiResponse>;
  /** `POST /v1/edits` with a JSON body: the job, and a signed URL to upload its image to. */
  createSigned(userId: string, request: ApiRequest): Promise<ApiResponse>;
  /** `POST /v1/edits?operation=…` with the image as the body. */
  createDirect(userId: string, request: ApiRequest): Promise<ApiResponse>;
  getEdit(userId: string, jobId: string): Promise<ApiResponse>;
  listEvents(userId: string, jobId: string): Promise<ApiResponse>;
  cancelEdit(userId: string, jobId: string): Promise<ApiResponse>;
  /** `GET /v1/webhooks/secret`: the caller's signing secret, made on the first read. */
  getWebhookSecret(userId: string): Promise<ApiResponse>;
  /** `POST /v1/webhooks/secret`: a new secret; the old one signs nothing from then on. */
  rotateWebhookSecret(userId: string): Promise<ApiResponse>;
  /** `GET /v1/edits/{jobId}/webhooks`: the job's webhook messages and every attempt at each. */
  listWebhookDeliveries(userId: string, jobId: string): Promise<ApiResponse>;
}

const JOB_PATH = /^\/v1\/edits\/([A-Za-z0-9-]{1,64})(\/events|\/cancel|\/webhooks)?$/;

/**
 * The router. `authenticate` answers the caller's user id, or throws; errors are left to the
 * caller to answer.
 */
export function createEditRouter(
  routes: EditRoutes,
  authenticate: (request: ApiRequest) => Promise<string>,
): (request: ApiRequest) => Promise<ApiResponse> {
  return async (request) => {
    const { method, path } = request;
    if (path === "/v1/openapi.json") {
      allow(method, "GET");
      return routes.openApiDocument();
    }
    // Every other route wants a valid token, the model list included, and counts towards quotas.
    const userId = await authenticate(request);
    if (path === "/v1/models") {
      allow(method, "GET");
      return routes.listModels(userId);
    }
    if (path === "/v1/edits") {
      allow(method, "GET", "POST");
      if (method === "GET") return routes.listEdits(userId);
      return request.query.operation !== undefined ? routes.createDirect(userId, request) : routes.createSigned(userId, request);
    }
    if (path === "/v1/webhooks/secret") {
      allow(method, "GET", "POST");
      return method === "GET" ? routes.getWebhookSecret(userId) : routes.rotateWebhookSecret(userId);
    }
    const match = JOB_PATH.exec(path);
    if (!match) throw new ApiError("not_found", `no route ${method} ${path}`);
    const [, jobId = "", sub] = match;
    if (sub === undefined) {
      allow(method, "GET");
      return routes.getEdit(userId, jobId);
    }
    if (sub === "/events") {
      allow(method, "GET");
      return routes.listEvents(userId, jobId);
    }
    if (sub === "/webhooks") {
      allow(method, "GET");
      return routes.listWebhookDeliveries(userId, jobId);
    }
    allow(method, "POST");
    return routes.cancelEdit(userId, jobId);
  };
}

/** Refuses a method the path does not have with 405 and the `Allow` header RFC 9110 asks for. */
function allow(method: string, ...allowed: string[]): void {
  if (!allowed.includes(method)) {
    throw new ApiError("method_not_allowed", `use ${allowed.join(" or ")}`, undefined, { Allow: allowed.join(", ") });
  }
}
