/**
 * The typed client of the edit service, for web and React Native apps and for scripts: create an
 * edit and upload its photo with progress, follow the job live through a Firestore listener (the
 * Firebase JS SDK, as a real app does), cancel it, and fetch the result.
 *
 * Give it a Firestore instance from `connectEmulatorFirestore` (the local stack) or from a
 * Firebase app signed in with Firebase Auth (production). Without one, `watch` asks the API once
 * a second instead.
 */
import { doc, onSnapshot, type Firestore } from "firebase/firestore";
import { EditApiError, ServiceUnreachableError, UploadError } from "./editErrors.js";
import { isEnded, type EndedJob, type Job, type JobEvent, type JobStatus, type ModelInfo, type OutputFormat, type Priority, type WebhookDelivery, type WebhookRequest } from "./editTypes.js";
import { parseJob } from "./jobSnapshot.js";
import { causeOf, sendWithProgress, type ProgressListener } from "./sendWithProgress.js";

export interface EditClientOptions {
  /** The API's base URL, without `/v1` (for example `http://127.0.0.1:8080`). */
  apiUrl: string;
  /** A current Firebase ID token (locally, one from `npm run token`). Called before every request. */
  getToken: () => string | Promise<string>;
  /** For live updates; without it `watch` polls the API. */
  firestore?: Firestore;
  /** How often `watch` polls when there is no Firestore (default 1000 ms). */
  pollIntervalMs?: number;
}

export interface CreateEditInput {
  operation: string;
  params?: Record<string, number | string | boolean>;
  image: Blob | Uint8Array;
  /** `image/jpeg`, `image/png`, `image/webp` or `image/avif` (HEIC is refused with 415: convert it first). */
  contentType: string;
  /** The result's format (default PNG). */
  output?: OutputFormat;
  /**
   * Direct flow only: wait up to this many seconds (1 to 60) in the request itself for the job to
   * end (`Prefer: wait=N`); if it does, `CreatedEdit.job` is the ended job. The signed flow ignores it.
   */
  waitSeconds?: number;
  /** Called as the photo's bytes go out. */
  onUploadProgress?: ProgressListener;
  /** Makes a retried create land on the same job. */
  idempotencyKey?: string;
  /** `interactive` (default) or `batch`: batch jobs wait while interactive ones run first. */
  priority?: Priority;
  /** `false`: run the model even when an earlier identical request of the same user has a result. Default true. */
  cache?: boolean;
  /**
   * `signed` (default): ask for a signed upload URL, then PUT the photo to storage, any size up to
   * the service's limit. `direct`: send the photo in the request itself (small photos only).
   */
  flow?: "signed" | "direct";
  /** Where to POST the job's events, signed (verify them with `verifyWebhook`), and which ones (default the three final ones). */
  webhook?: WebhookRequest;
  signal?: AbortSignal;
}

export interface CreatedEdit {
  jobId: string;
  status: JobStatus;
  /** The job, when it ended within `waitSeconds` (the service answered 200). */
  job?: EndedJob;
}

export interface EditResult {
  bytes: Uint8Array;
  contentType: string;
  width: number;
  height: number;
}

export interface EditClient {
  /** The edits and their parameters (GET /v1/models). */
  models(): Promise<ModelInfo[]>;
  createEdit(input: CreateEditInput): Promise<CreatedEdit>;
  getEdit(jobId: string): Promise<Job>;
  /** The caller's jobs, newest first. */
  listEdits(): Promise<Job[]>;
  /** The job's history, one event per state change, in order. */
  events(jobId: string): Promise<JobEvent[]>;
  cancel(jobId: string): Promise<Job>;
  /** Calls `onChange` with every new state of the job until the returned function is called. */
  watch(jobId: string, onChange: (job: Job) => void, onError?: (error: unknown) => void): () => void;
  /** Resolves with the job once it has succeeded, failed or been canceled. */
  waitUntilEnded(jobId: string, onChange?: (job: Job) => void): Promise<EndedJob>;
  /** Downloads the result of a succeeded job. */
  fetchResult(jobId: string): Promise<EditResult>;
  /** The caller's webhook signing secret, `whsec_…` (made on the first read). */
  webhookSecret(): Promise<string>;
  /** Replaces the caller's webhook secret and answers the new one. */
  rotateWebhookSecret(): Promise<string>;
  /** The job's webhook messages and every attempt to deliver each. */
  webhookDeliveries(jobId: string): Promise<WebhookDelivery[]>;
}

export function createEditClient(options: EditClientOptions): EditClient {
  const base = options.apiUrl.replace(/\/+$/, "");
  const pollMs = options.pollIntervalMs ?? 1000;

  async function call<T>(method: string, path: string, init: { json?: unknown; auth?: boolean } = {}): Promise<T> {
    const headers: Record<string, string> = {};
    if (init.auth !== false) headers.authorization = `Bearer ${await options.getToken()}`;
    if (init.json !== undefined) headers["content-type"] = "application/json";
    let response: Response;
    try {
      response = await fetch(`${base}${path}`, { method, headers, ...(init.json === undefined ? {} : { body: JSON.stringify(init.json) }) });
    } catch (error) {
      throw new ServiceUnreachableError(base, causeOf(error));
    }
    return readAnswer<T>(response.status, await response.text());
  }

  async function getEdit(jobId: string): Promise<Job> {
    return parseJob(await call("GET", `/v1/edits/${encodeURIComponent(jobId)}`));
  }

  function watch(jobId: string, onChange: (job: Job) => void, onError: (error: unknown) => void = () => {}): () => void {
    let lastVersion = -1;
    const deliver = (job: Job) => {
      // Never go back: a poll may cross a snapshot, and versions only grow.
      if (job.version < lastVersion || (job.version === lastVersion && job.status !== "running")) return;
      lastVersion = job.version;
      onChange(job);
    };
    if (options.firestore) {
      return onSnapshot(
        doc(options.firestore, "jobs", jobId),
        (snapshot) => {
          const data = snapshot.data();
          if (data === undefined) return;
          try {
            deliver(parseJob(data));
          } catch (error) {
            onError(error);
          }
        },
        onError,
      );
    }
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const poll = async () => {
      try {
        const job = await getEdit(jobId);
        if (stopped) return;
        deliver(job);
        if (isEnded(job)) return;
      } catch (error) {
        if (stopped) return;
        onError(error);
        if (!(error instanceof ServiceUnreachableError)) return;
      }
      timer = setTimeout(() => void poll(), pollMs);
    };
    void poll();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    };
  }

  return {
    async models() {
      const body = await call<{ models: ModelInfo[] }>("GET", "/v1/models");
      return body.models;
    },

    async createEdit(input) {
      const idempotency: Record<string, string> = input.idempotencyKey === undefined ? {} : { "idempotency-key": input.idempotencyKey };
      if (input.flow === "direct") {
        const query = new URLSearchParams({ operation: input.operation });
        for (const [name, value] of Object.entries(input.params ?? {})) query.set(`params.${name}`, String(value));
        if (input.priority !== undefined) query.set("priority", input.priority);
        if (input.cache !== undefined) query.set("cache", String(input.cache));
        if (input.webhook) {
          query.set("webhook.url", input.webhook.url);
          if (input.webhook.events) query.set("webhook.events", input.webhook.events.join(","));
        }
        for (const [name, value] of Object.entries(input.output ?? {})) if (value !== undefined) query.set(`output.${name}`, String(value));
        const prefer: Record<string, string> = input.waitSeconds === undefined ? {} : { prefer: `wait=${input.waitSeconds}` };
        const sent = await sendWithProgress({
          url: `${base}/v1/edits?${query}`,
          method: "POST",
          headers: { authorization: `Bearer ${await options.getToken()}`, "content-type": input.contentType, ...idempotency, ...prefer },
          body: input.image,
          ...(input.onUploadProgress ? { onProgress: input.onUploadProgress } : {}),
          ...(input.signal ? { signal: input.signal } : {}),
        }).catch((error: unknown) => {
          throw error instanceof ServiceUnreachableError ? new ServiceUnreachableError(base, error.reason) : error;
        });
        if (sent.status === 200) {
          const job = parseJob(readAnswer(sent.status, sent.text));
          if (isEnded(job)) return { jobId: job.jobId, status: job.status, job };
        }
        const created = readAnswer<CreatedEdit>(sent.status, sent.text);
        return { jobId: created.jobId, status: created.status };
      }
      const token = await options.getToken();
      let answer: Response;
      try {
        answer = await fetch(`${base}/v1/edits`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...idempotency },
          body: JSON.stringify({
            operation: input.operation,
            params: input.params ?? {},
            contentType: input.contentType,
            ...(input.priority === undefined ? {} : { priority: input.priority }),
            ...(input.cache === undefined ? {} : { cache: input.cache }),
            ...(input.webhook ? { webhook: input.webhook } : {}),
            ...(input.output ? { output: input.output } : {}),
          }),
          ...(input.signal ? { signal: input.signal } : {}),
        });
      } catch (error) {
        if ((error as Error).name === "AbortError") throw error;
        throw new ServiceUnreachableError(base, causeOf(error));
      }
      const created = readAnswer<CreatedEdit & { upload?: { url: string; method: string; headers: Record<string, string> } }>(
        answer.status,
        await answer.text(),
      );
      // A replayed key whose upload already happened has no upload to make.
      if (!created.upload) return { jobId: created.jobId, status: created.status };
      const put = await sendWithProgress({
        url: created.upload.url,
        method: created.upload.method,
        // Exactly the signed headers (they include Content-Type): a second spelling would be joined to it.
        headers: created.upload.headers,
        body: input.image,
        ...(input.onUploadProgress ? { onProgress: input.onUploadProgress } : {}),
        ...(input.signal ? { signal: input.signal } : {}),
      });
      if (put.status < 200 || put.status > 299) throw new UploadError(put.status, `storage answered ${put.status}: ${put.text.slice(0, 200)}`);
      return { jobId: created.jobId, status: "awaiting_upload" };
    },

    getEdit,

    async listEdits() {
      const body = await call<{ edits: unknown[] }>("GET", "/v1/edits");
      return body.edits.map(parseJob);
    },

    async events(jobId) {
      return call<JobEvent[]>("GET", `/v1/edits/${encodeURIComponent(jobId)}/events`);
    },

    async cancel(jobId) {
      return parseJob(await call("POST", `/v1/edits/${encodeURIComponent(jobId)}/cancel`));
    },

    watch,

    waitUntilEnded(jobId, onChange) {
      return new Promise<EndedJob>((resolve, reject) => {
        let stop: (() => void) | undefined;
        let ended: EndedJob | undefined;
        stop = watch(
          jobId,
          (job) => {
            onChange?.(job);
            if (isEnded(job)) {
              ended = job;
              stop?.();
              resolve(job);
            }
          },
          (error) => {
            if (error instanceof ServiceUnreachableError) return; // polling tries again
            stop?.();
            reject(error);
          },
        );
        if (ended) stop();
      });
    },

    async webhookSecret() {
      return (await call<{ secret: string }>("GET", "/v1/webhooks/secret")).secret;
    },

    async rotateWebhookSecret() {
      return (await call<{ secret: string }>("POST", "/v1/webhooks/secret")).secret;
    },

    async webhookDeliveries(jobId) {
      return (await call<{ deliveries: WebhookDelivery[] }>("GET", `/v1/edits/${encodeURIComponent(jobId)}/webhooks`)).deliveries;
    },

    async fetchResult(jobId) {
      const job = await getEdit(jobId);
      if (job.status !== "succeeded") throw new EditApiError(409, "conflict", `the edit has no result: it is ${job.status}`);
      let response: Response;
      try {
        response = await fetch(job.output.url);
      } catch (error) {
        throw new ServiceUnreachableError(new URL(job.output.url).origin, causeOf(error));
      }
      if (!response.ok) throw new EditApiError(response.status, "download_failed", `the result could not be downloaded (${response.status})`);
      return {
        bytes: new Uint8Array(await response.arrayBuffer()),
        contentType: job.output.contentType,
        width: job.output.width,
        height: job.output.height,
      };
    },
  };
}

function readAnswer<T>(status: number, text: string): T {
  let body: unknown;
  try {
    body = text === "" ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (status >= 200 && status <= 299) return body as T;
  const error = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  const code = typeof error?.code === "string" ? error.code : status >= 500 ? "unavailable" : "bad_request";
  const message = typeof error?.message === "string" ? error.message : `the service answered ${status}`;
  throw new EditApiError(status, code, message);
}
