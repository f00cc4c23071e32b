/**
 * The web app: sign in, pick a photo, choose an edit and its parameters, upload with progress,
 * watch the job live through a Firestore listener, cancel, compare before and after, download,
 * and look back over past edits with their event history. Everything goes through the typed
 * client in `client/`.
 */
import "./style.css";
import type { EditClient } from "../../client/editClient.js";
import { describeError } from "../../client/editErrors.js";
import type { Job, ModelInfo } from "../../client/editTypes.js";
import { fieldValue, formatBytes, paramField, statusWords, type ParamField } from "./paramFields.js";

interface WebConfig {
  apiUrl: string;
  projectId: string;
  firestoreEmulatorHost: string;
}

const TOKEN_KEY = "photo-edits-token";
const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

const state: {
  config?: WebConfig;
  client?: EditClient;
  closeFirestore?: () => Promise<void>;
  models: ModelInfo[];
  operation?: string;
  fields: ParamField[];
  file?: File;
  beforeUrl?: string;
  jobId?: string;
  stopWatching?: () => void;
} = { models: [], fields: [] };

function showProblem(error: unknown): void {
  const problem = $("problem");
  problem.textContent = describeError(error);
  problem.hidden = false;
  if (error instanceof Error) console.error(error);
}

function clearProblem(): void {
  $("problem").hidden = true;
}

async function start(): Promise<void> {
  try {
    const response = await fetch("/config.json");
    state.config = (await response.json()) as WebConfig;
  } catch (error) {
    showProblem(error);
    return;
  }
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token && tokenSeconds(token) > 60) await signedIn(token);
  else showSignIn();
}

function tokenSeconds(token: string): number {
  try {
    const payload = JSON.parse(atob(token.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/"))) as { exp?: number };
    return (payload.exp ?? 0) - Date.now() / 1000;
  } catch {
    return 0;
  }
}

function showSignIn(): void {
  $("signin").hidden = false;
  for (const id of ["editor", "job", "history"]) $(id).hidden = true;
  $("account").textContent = "";
  $<HTMLInputElement>("user-name").focus();
}

$("signin-form").addEventListener("submit", (event) => {
  event.preventDefault();
  clearProblem();
  const userId = $<HTMLInputElement>("user-name").value.trim();
  void (async () => {
    try {
      const response = await fetch("/local/token", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ userId }) });
      const body = (await response.json()) as { token?: string; error?: { message: string } };
      if (!body.token) throw new Error(body.error?.message ?? "sign-in failed");
      sessionStorage.setItem(TOKEN_KEY, body.token);
      await signedIn(body.token);
    } catch (error) {
      $("problem").textContent = `Could not sign in: ${error instanceof Error ? error.message : String(error)}`;
      $("problem").hidden = false;
    }
  })();
});

async function signedIn(token: string): Promise<void> {
  const config = state.config!;
  // The client and the Firebase SDK load after the first paint; the sign-in screen needs neither.
  const [{ createEditClient }, { connectEmulatorFirestore, tokenSubject }] = await Promise.all([
    import("../../client/editClient.js"),
    import("../../client/firestoreConnection.js"),
  ]);
  const userId = tokenSubject(token);
  await state.closeFirestore?.();
  const connection = connectEmulatorFirestore({ projectId: config.projectId, emulatorHost: config.firestoreEmulatorHost, userId });
  state.closeFirestore = connection.close;
  state.client = createEditClient({
    apiUrl: config.apiUrl,
    firestore: connection.firestore,
    getToken: () => {
      const current = sessionStorage.getItem(TOKEN_KEY);
      if (!current || tokenSeconds(current) <= 0) {
        showSignIn();
        throw new Error("signed out");
      }
      return current;
    },
  });
  $("signin").hidden = true;
  $("editor").hidden = false;
  $("history").hidden = false;
  const account = $("account");
  account.replaceChildren(Object.assign(document.createElement("span"), { textContent: userId }));
  const out = Object.assign(document.createElement("button"), { type: "button", textContent: "Sign out", className: "link" });
  out.addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    state.stopWatching?.();
    showSignIn();
  });
  account.append(out);
  await Promise.all([loadModels(), loadHistory()]);
}

async function loadModels(): Promise<void> {
  try {
    state.models = await state.client!.models();
  } catch (error) {
    showProblem(error);
    return;
  }
  const box = $("operations");
  box.replaceChildren();
  for (const model of state.models) {
    const label = document.createElement("label");
    label.className = `operation${model.available ? "" : " unavailable"}`;
    const radio = Object.assign(document.createElement("input"), { type: "radio", name: "operation", value: model.operation, disabled: !model.available });
    radio.addEventListener("change", () => chooseOperation(model.operation));
    const title = Object.assign(document.createElement("strong"), { textContent: model.title });
    const how = Object.assign(document.createElement("small"), {
      textContent: `${model.method === "classical" ? "Classical filter" : model.method === "learned" ? "AI model" : model.method}${model.available ? "" : " · coming soon"}`,
    });
    label.append(radio, title, how);
    box.append(label);
  }
  const first = state.models.find((model) => model.available);
  if (first) {
    box.querySelector<HTMLInputElement>(`input[value="${first.operation}"]`)!.checked = true;
    chooseOperation(first.operation);
  }
}

function chooseOperation(operation: string): void {
  state.operation = operation;
  const model = state.models.find((candidate) => candidate.operation === operation);
  state.fields = Object.entries(model?.params ?? {}).map(([name, info]) => paramField(name, info));
  const box = $("params");
  box.replaceChildren();
  for (const field of state.fields) box.append(renderField(field));
  updateStart();
}

function renderField(field: ParamField): HTMLElement {
  const wrap = document.createElement("div");
  wrap.className = "param";
  const id = `param-${field.name}`;
  const label = Object.assign(document.createElement("label"), { htmlFor: id, textContent: field.label });
  const help = Object.assign(document.createElement("p"), { className: "hint", id: `${id}-help`, textContent: field.help });
  let control: HTMLElement;
  if (field.control === "choice") {
    const select = Object.assign(document.createElement("select"), { id, name: field.name });
    for (const option of field.options) select.append(new Option(String(option), String(option), false, String(option) === field.value));
    control = select;
  } else if (field.control === "range") {
    const row = document.createElement("div");
    row.className = "row";
    const input = Object.assign(document.createElement("input"), { id, name: field.name, type: "range", min: String(field.min), max: String(field.max), step: String(field.step), value: field.value });
    const shown = Object.assign(document.createElement("output"), { textContent: field.value });
    input.addEventListener("input", () => (shown.textContent = input.value));
    row.append(input, shown);
    control = row;
  } else if (field.control === "toggle") {
    control = Object.assign(document.createElement("input"), { id, name: field.name, type: "checkbox", checked: field.value });
  } else {
    control = Object.assign(document.createElement("input"), { id, name: field.name, value: field.value });
  }
  control.setAttribute("aria-describedby", help.id);
  wrap.append(label, control, help);
  return wrap;
}

function chosenParams(): Record<string, number | string | boolean> {
  const params: Record<string, number | string | boolean> = {};
  for (const field of state.fields) {
    const input = document.getElementById(`param-${field.name}`) as HTMLInputElement | HTMLSelectElement | null;
    if (!input) continue;
    params[field.name] = fieldValue(field, input instanceof HTMLInputElement && input.type === "checkbox" ? input.checked : input.value);
  }
  return params;
}

function updateStart(): void {
  $<HTMLButtonElement>("start").disabled = !(state.file && state.operation);
}

function pickFile(file: File | undefined): void {
  clearProblem();
  if (!file) return;
  if (!["image/jpeg", "image/png", "image/webp"].includes(file.type)) {
    $("problem").textContent = `“${file.name}” is not a photo the service can read. Please pick a JPEG, PNG or WebP image.`;
    $("problem").hidden = false;
    return;
  }
  state.file = file;
  if (state.beforeUrl) URL.revokeObjectURL(state.beforeUrl);
  state.beforeUrl = URL.createObjectURL(file);
  const preview = $<HTMLImageElement>("preview");
  preview.src = state.beforeUrl;
  preview.hidden = false;
  $("drop-text").textContent = `${file.name} · ${formatBytes(file.size)} — tap to choose another`;
  updateStart();
}

$<HTMLInputElement>("file").addEventListener("change", (event) => pickFile((event.target as HTMLInputElement).files?.[0]));
const drop = $("drop");
drop.addEventListener("dragover", (event) => {
  event.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  pickFile(event.dataTransfer?.files[0]);
});

$("start").addEventListener("click", () => void startEdit());

async function startEdit(): Promise<void> {
  const client = state.client!;
  const file = state.file!;
  clearProblem();
  state.stopWatching?.();
  resetJobView();
  $("job").hidden = false;
  $<HTMLButtonElement>("start").disabled = true;
  $("cancel").hidden = false;
  const progress = $<HTMLProgressElement>("upload-progress");
  try {
    const created = await client.createEdit({
      operation: state.operation!,
      params: chosenParams(),
      image: file,
      contentType: file.type,
      idempotencyKey: crypto.randomUUID(),
      onUploadProgress: (sent, total) => {
        progress.value = total === 0 ? 1 : sent / total;
        $("upload-text").textContent = `${Math.round(progress.value * 100)}% of ${formatBytes(total)}`;
      },
    });
    state.jobId = created.jobId;
    state.stopWatching = client.watch(created.jobId, (job) => void showJob(job), showProblem);
  } catch (error) {
    showProblem(error);
    $("cancel").hidden = true;
    updateStart();
  }
}

function resetJobView(): void {
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
  if (job.jobId !== state.jobId) return;
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
  updateStart();
  void loadHistory();
  if (job.status !== "succeeded") return;
  try {
    // The projection has the gs:// address; the API signs a download URL.
    const fresh = await state.client!.getEdit(job.jobId);
    if (fresh.status !== "succeeded") return;
    showResult(fresh.output.url, fresh.output.width, fresh.output.height, fresh.output.sizeBytes, fresh.jobId);
  } catch (error) {
    showProblem(error);
  }
}

function showResult(url: string, width: number, height: number, sizeBytes: number, jobId: string): void {
  $<HTMLImageElement>("before-image").src = state.beforeUrl ?? url;
  $<HTMLImageElement>("result-image").src = url;
  $("compare-frame").style.aspectRatio = `${width} / ${height}`;
  setCompare(Number($<HTMLInputElement>("compare-slider").value));
  const download = $<HTMLAnchorElement>("download");
  download.href = url;
  download.download = `edit-${jobId.slice(0, 8)}.png`;
  $("result-size").textContent = `${width} × ${height} px · ${formatBytes(sizeBytes)}`;
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
  if (!state.jobId) return;
  void state.client!.cancel(state.jobId).catch(showProblem);
});

$("again").addEventListener("click", () => {
  $("job").hidden = true;
  $<HTMLInputElement>("file").click();
});

$("refresh").addEventListener("click", () => void loadHistory());

async function loadHistory(): Promise<void> {
  const list = $("jobs");
  let jobs: Job[];
  try {
    jobs = await state.client!.listEdits();
  } catch (error) {
    showProblem(error);
    return;
  }
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
    const events = await state.client!.events(job.jobId);
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

// Whatever slips through still reaches the person, in words.
window.addEventListener("unhandledrejection", (event) => showProblem(event.reason));

void start();
