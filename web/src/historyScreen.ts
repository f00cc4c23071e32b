/** The past-edits screen: the signed-in person's edits, newest first, each with its event history. */
import type { EditClient } from "../../client/editClient.js";
import type { Job } from "../../client/editTypes.js";
import { $, showProblem } from "./page.js";

export interface HistoryScreen {
  load(): Promise<void>;
  /** Empties the list (on sign-out), and drops any answer still on its way for the previous person. */
  clear(): void;
}

export function createHistoryScreen(client: () => EditClient): HistoryScreen {
  /** Counts loads and clears, so that only the latest load fills the list. */
  let generation = 0;

  async function load(): Promise<void> {
    const list = $("jobs");
    const mine = ++generation;
    let jobs: Job[];
    try {
      jobs = await client().listEdits();
    } catch (error) {
      if (mine === generation) showProblem(error);
      return;
    }
    if (mine !== generation) return;
    list.replaceChildren();
    if (jobs.length === 0) list.append(Object.assign(document.createElement("li"), { className: "hint", textContent: "No edits yet." }));
    for (const job of jobs) {
      const item = document.createElement("li");
      const details = document.createElement("details");
      const summary = document.createElement("summary");
      const when = new Date(job.createdAt).toLocaleString();
      const badge = Object.assign(document.createElement("span"), { className: "status", textContent: job.status.replace("_", " ") });
      badge.dataset.status = job.status;
      summary.append(badge, Object.assign(document.createElement("span"), { textContent: ` ${job.operation} · ${when}` }));
      details.append(summary);
      details.addEventListener("toggle", () => {
        if (!details.open || details.dataset.loaded) return;
        details.dataset.loaded = "1";
        void showEvents(job, details);
      });
      item.append(details);
      list.append(item);
    }
  }

  async function showEvents(job: Job, into: HTMLElement): Promise<void> {
    try {
      const events = await client().events(job.jobId);
      const table = document.createElement("ol");
      table.className = "events";
      for (const event of events) {
        const row = document.createElement("li");
        const detail = event.type === "EditFailed" || event.type === "EditAttemptFailed" ? ` — ${String(event.data.message ?? "")}` : "";
        row.textContent = `${new Date(event.at).toLocaleTimeString()}  ${event.type}${detail}`;
        table.append(row);
      }
      into.append(table);
      if (job.status === "failed") into.append(Object.assign(document.createElement("p"), { className: "hint", textContent: job.error.message }));
      if (job.status === "succeeded") {
        const link = Object.assign(document.createElement("a"), { href: job.output.url, textContent: `Open the result (${job.output.width} × ${job.output.height})`, target: "_blank", rel: "noopener" });
        into.append(link);
      }
    } catch (error) {
      showProblem(error);
    }
  }

  $("refresh").addEventListener("click", () => void load());
  return {
    load,
    clear() {
      generation += 1;
      $("jobs").replaceChildren();
    },
  };
}
