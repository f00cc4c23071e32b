/**
 * A deadline on every Firestore call of the event store and the request counter. The client's
 * own retry settings let a call on a hung connection wait a minute or more; a worker's lease and
 * an API caller cannot. Past `deadlineMs`, or on gRPC UNAVAILABLE or DEADLINE_EXCEEDED, the call
 * fails with `StoreUnavailableError`. A write abandoned at its deadline may still land: every
 * append is a `create()` on the next seq, so a late landing makes the next writer re-read, never
 * write twice.
 */
import { StoreUnavailableError } from "../../events/errors.js";

/** gRPC DEADLINE_EXCEEDED and UNAVAILABLE: the store was not reached, or did not answer. */
const UNREACHABLE = new Set([4, 14]);

export async function withStoreDeadline<T>(what: string, deadlineMs: number, call: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StoreUnavailableError(`Firestore did not answer ${what} within ${deadlineMs} ms`)), deadlineMs);
  });
  try {
    return await Promise.race([call(), late]);
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    if (typeof code === "number" && UNREACHABLE.has(code)) {
      throw new StoreUnavailableError(`Firestore is unavailable (${what}): ${(error as Error).message}`);
    }
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/** Wraps every method of `port` in `withStoreDeadline`. */
export function withStoreDeadlines<P extends object>(port: P, deadlineMs: number): P {
  const wrapped: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(port)) {
    wrapped[name] =
      typeof method === "function"
        ? (...args: unknown[]) => withStoreDeadline(name, deadlineMs, () => (method as (...a: unknown[]) => Promise<unknown>).apply(port, args))
        : method;
  }
  return wrapped as P;
}
