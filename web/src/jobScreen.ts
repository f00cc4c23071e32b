/**
 * The job screen: the upload's progress, the job's status as the Firestore listener sees it
 * change, tile progress, "Cancel", and once the edit succeeds the before/after comparison and
 * the download.
 */
import type { EditClient } from "../../client/editClient.js";
import type { Job } from "../../client/editTypes.js";
import { WAIT_MAX_BYTES, type ChosenEdit } from "./editorScreen.js";
import { $, clearProblem, showProblem } from "./page.js";
import { formatBytes, statusWords } from "./paramFields.js";

export interface JobScreen {
  /** Uploads the photo, creates the edit and watches it. */
  start(edit: ChosenEdit): Promise<void>;
  /** Stops listening to the job in view. */
  stopWatching(): void;
}

export function createJobScreen(
  client: () => EditClient,
  editor: { updateStart(): void; beforeUrl(): string | undefined },
  events: { onEnded(): void },
): JobScreen {
  let jobId: string | undefined;
  let stopWatching: (() => void) | undefined;

  function reset(): void {
    $<HTMLProgressElement>("upload-progress").value = 0;
    $("upload-text").textContent = "";
    setStatus("", "");
    $("tiles-line").hidden = true;
    $("compare").hidden = true;
    $("again").hidden = true;
  }

  function setStatus(status: string, words: string): void {
    const badge = $("status");
    badge.textContent = status.replace("_", " ");
    badge.dataset.status = status;
    $("status-words").textContent = words;
  }

  async function showJob(job: Job): Promise<void> {
    if (job.jobId !== jobId) return;
    let words = statusWords(job.status);
    if (job.status === "failed") words = `The edit failed: ${job.error.message}`;
    if ((job.status === "queued" || job.status === "running") && job.lastError) words += ` (an earlier attempt failed and is being retried: ${job.lastError.message})`;
    setStatus(job.status, words);
    if (job.status === "running" && job.progress) {
      $("tiles-line").hidden = false;
      $<HTMLProgressElement>("tile-progress").value = job.progress.tilesDone / job.progress.tilesTotal;
      $("tile-text").textContent = `${job.progress.tilesDone} of ${job.progress.tilesTotal}`;
    }
    const ended = job.status === "succeeded" || job.status === "failed" || job.status === "canceled";
    if (!ended) return;
    $("cancel").hidden = true;
    $("again").hidden = false;
    $("tiles-line").hidden = job.status !== "succeeded" || $("tiles-line").hidden;
    if (job.status === "succeeded") {
      // The projection drops progress when the job ends; every tile is done by then.
      $<HTMLProgressElement>("tile-progress").value = 1;
      const total = /of (\d+)$/.exec($("tile-text").textContent ?? "")?.[1];
      if (total) $("tile-text").textContent = `${total} of ${total}`;
    }
    editor.updateStart();
    events.onEnded();
    if (job.status !== "succeeded") return;
    try {
      // The projection has the gs:// address; the API signs a download URL.
      const fresh = await client().getEdit(job.jobId);
      if (fresh.status !== "succeeded") return;
      showResult(fresh.output.url, fresh.output.width, fresh.output.height, fresh.output.sizeBytes, fresh.jobId, fresh.output.contentType);
    } catch (error) {
      showProblem(error);
    }
  }

  function showResult(url: string, width: number, height: number, sizeBytes: number, id: string, contentType: string): void {
    $<HTMLImageElement>("before-image").src = editor.beforeUrl() ?? url;
    $<HTMLImageElement>("result-image").src = url;
    $("compare-frame").style.aspectRatio = `${width} / ${height}`;
    setCompare(Number($<HTMLInputElement>("compare-slider").value));
    const download = $<HTMLAnchorElement>("download");
    download.href = url;
    download.download = `edit-${id.slice(0, 8)}.${contentType === "image/jpeg" ? "jpg" : contentType === "image/webp" ? "webp" : "png"}`;
    $("result-size").textContent = `${width} × ${height} px · ${contentType.replace("image/", "").toUpperCase()} · ${formatBytes(sizeBytes)}`;
    $("compare").hidden = false;
  }

  function setCompare(percent: number): void {
    $("result-image").style.clipPath = `inset(0 0 0 ${percent}%)`;
    $("compare-handle").style.left = `${percent}%`;
  }
  $<HTMLInputElement>("compare-slider").addEventListener("input", (event) => setCompare(Number((event.target as HTMLInputElement).value)));

  // A cross-origin link ignores `download`, so fetch the result and save it from a local URL.
  $("download").addEventListener("click", (event) => {
    const link = event.currentTarget as HTMLAnchorElement;
    if (link.href.startsWith("blob:")) return;
    event.preventDefault();
    void (async () => {
      try {
        const blob = await (await fetch(link.href)).blob();
        const local = Object.assign(document.createElement("a"), { href: URL.createObjectURL(blob), download: link.download });
        local.click();
        setTimeout(() => URL.revokeObjectURL(local.href), 10_000);
      } catch {
        window.open(link.href, "_blank", "noopener");
      }
    })();
  });

  $("cancel").addEventListener("click", () => {
    if (!jobId) return;
    void client().cancel(jobId).catch(showProblem);
  });

  $("again").addEventListener("click", () => {
    $("job").hidden = true;
    $<HTMLInputElement>("file").click();
  });

  return {
    async start(edit) {
      clearProblem();
      stopWatching?.();
      reset();
      $("job").hidden = false;
      $<HTMLButtonElement>("start").disabled = true;
      $("cancel").hidden = false;
      const progress = $<HTMLProgressElement>("upload-progress");
      try {
        const wait = edit.wait && edit.file.size <= WAIT_MAX_BYTES;
        if (wait) setStatus("", "Waiting for the result in the request (up to 30 s)…");
        const created = await client().createEdit({
          operation: edit.operation,
          params: edit.params,
          image: edit.file,
          contentType: edit.file.type,
          priority: edit.priority,
          output: edit.output,
          ...(wait ? { flow: "direct" as const, waitSeconds: 30 } : {}),
          idempotencyKey: crypto.randomUUID(),
          onUploadProgress: (sent, total) => {
            progress.value = total === 0 ? 1 : sent / total;
            $("upload-text").textContent = `${Math.round(progress.value * 100)}% of ${formatBytes(total)}`;
          },
        });
        jobId = created.jobId;
        // Ended within the wait: nothing to watch.
        if (created.job) await showJob(created.job);
        else stopWatching = client().watch(created.jobId, (job) => void showJob(job), showProblem);
      } catch (error) {
        showProblem(error);
        $("cancel").hidden = true;
        editor.updateStart();
      }
    },
    stopWatching: () => stopWatching?.(),
  };
}
