/** Following a job of the local stack through its public API, for the e2e tests. */
import { sleep } from "../../local/stack/processes.js";

const ENDED = ["succeeded", "failed", "canceled"];

/** Polls `GET /v1/edits/{jobId}` until the job has ended (two minutes at most); resolves with its status. */
export async function waitForJobEnd(apiUrl: string, token: string, jobId: string): Promise<string> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const response = await fetch(`${apiUrl}/v1/edits/${jobId}`, { headers: { authorization: `Bearer ${token}` } });
    const { status } = (await response.json()) as { status: string };
    if (ENDED.includes(status)) return status;
    await sleep(250);
  }
  throw new Error(`job ${jobId} did not end`);
}
