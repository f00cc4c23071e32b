/**
 * The HTTP API, version 1: create, read, list and cancel edits. Framework-neutral: it takes a
 * plain request and returns a plain response; `functions/index.ts` binds it to the Functions
 * Framework. This file composes the parts: the router (`editRouter.ts`), the handlers
 * (`editHandlers.ts`), the views clients get (`jobView.ts`) and the one mapping of errors to
 * answers (`apiError.ts`).
 */
import type { TokenVerifier } from "../events/tokenVerifier.js";
import type { Admission } from "./admission.js";
import { toErrorResponse } from "./apiError.js";
import { createEditHandlers, type EditHandlerDeps } from "./editHandlers.js";
import { createEditRouter, type ApiRequest, type ApiResponse } from "./editRouter.js";

export type { ApiRequest, ApiResponse } from "./editRouter.js";

export interface ApiDeps extends EditHandlerDeps {
  verifier: TokenVerifier;
  /** How many requests this instance works on at once; absent, no limit. */
  admission?: Admission;
}

export function createEditApi(deps: ApiDeps): (request: ApiRequest) => Promise<ApiResponse> {
  const log = deps.log ?? (() => {});

  /** The places requests hold in `admission`, given back when their answer is ready. */
  const places = new WeakMap<ApiRequest, () => void>();

  /**
   * The caller's user id, once their token is verified and their request admitted: first by what
   * this instance knows of their quota (429, no store call), then by the instance's admission
   * control (503 when it is full), then by the shared quota count.
   */
  async function authenticate(request: ApiRequest): Promise<string> {
    const header = request.headers.authorization ?? "";
    const match = /^Bearer (\S+)$/i.exec(header);
    // Cancelling acts on a job for good: a revoked session or a disabled account must not do it.
    const checkRevoked = request.method === "POST" && request.path.endsWith("/cancel");
    const caller = await deps.verifier.verify(match?.[1] ?? "", { checkRevoked });
    deps.quota?.check(caller.userId);
    if (deps.admission) places.set(request, await deps.admission.enter(caller.userId));
    await deps.quota?.admit(caller.userId);
    return caller.userId;
  }

  const route = createEditRouter(createEditHandlers(deps), authenticate);
  return async (request) => {
    try {
      return await route(request);
    } catch (error) {
      const response = toErrorResponse(error);
      if (response.status >= 500) log({ severity: "ERROR", message: "request failed", error: String(error), path: request.path });
      return { status: response.status, body: response.body, ...(response.headers ? { headers: response.headers } : {}) };
    } finally {
      places.get(request)?.();
    }
  };
}
