/**
 * The editor screen: the edits on offer (from GET /v1/models), the chosen edit's parameters, and
 * the photo, picked or dropped, with its preview. "Start" hands the chosen edit to the job screen.
 */
import type { EditClient } from "../../client/editClient.js";
import type { ModelInfo, OutputFormat, Priority } from "../../client/editTypes.js";
import { $, clearProblem, showProblem, showProblemText } from "./page.js";
import { fieldValue, formatBytes, paramField, type ParamField } from "./paramFields.js";

/** An edit as the person chose it. */
export interface ChosenEdit {
  operation: string;
  params: Record<string, number | string | boolean>;
  file: File;
  /** `interactive` runs ahead of `batch` work. */
  priority: Priority;
  output: OutputFormat;
  /** "Wait for it": the direct flow with `Prefer: wait`. */
  wait: boolean;
}

/** The largest photo "Wait for it" sends in the request itself (the direct flow's limit). */
export const WAIT_MAX_BYTES = 10 * 1024 * 1024;

export interface EditorScreen {
  /** Lists the edits on offer and chooses the first available one. */
  load(): Promise<void>;
  /** Enables "Start" once a photo and an edit are chosen. */
  updateStart(): void;
  /** A local URL of the chosen photo, for the before/after comparison. */
  beforeUrl(): string | undefined;
}

export function createEditorScreen(client: () => EditClient, events: { onStart(edit: ChosenEdit): void }): EditorScreen {
  let models: ModelInfo[] = [];
  let operation: string | undefined;
  let fields: ParamField[] = [];
  let file: File | undefined;
  let beforeUrl: string | undefined;

  function chooseOperation(chosen: string): void {
    operation = chosen;
    const model = models.find((candidate) => candidate.operation === chosen);
    fields = Object.entries(model?.params ?? {}).map(([name, info]) => paramField(name, info));
    const box = $("params");
    box.replaceChildren();
    for (const field of fields) box.append(renderField(field));
    updateStart();
  }

  function chosenParams(): Record<string, number | string | boolean> {
    const params: Record<string, number | string | boolean> = {};
    for (const field of fields) {
      const input = document.getElementById(`param-${field.name}`) as HTMLInputElement | HTMLSelectElement | null;
      if (!input) continue;
      params[field.name] = fieldValue(field, input instanceof HTMLInputElement && input.type === "checkbox" ? input.checked : input.value);
    }
    return params;
  }

  function chosenOutput(): OutputFormat {
    const format = $<HTMLSelectElement>("output-format").value as OutputFormat["format"];
    const output: OutputFormat = { format };
    if (format !== "png") output.quality = Number($<HTMLInputElement>("output-quality").value);
    if (format === "jpeg") output.background = $<HTMLInputElement>("output-background").value;
    return output;
  }

  function updateOutputFields(): void {
    const format = $<HTMLSelectElement>("output-format").value;
    $("output-quality-field").hidden = format === "png";
    $("output-background-field").hidden = format !== "jpeg";
    $("output-format-help").textContent =
      format === "jpeg" ? "JPEG has no transparency: transparent parts (as after background removal) are filled with the colour below." : "";
  }
  $("output-format").addEventListener("change", updateOutputFields);
  $<HTMLInputElement>("output-quality").addEventListener("input", (event) => ($("output-quality-shown").textContent = (event.target as HTMLInputElement).value));

  function updateStart(): void {
    $<HTMLButtonElement>("start").disabled = !(file && operation);
  }

  async function pickFile(chosen: File | undefined): Promise<void> {
    clearProblem();
    if (!chosen) return;
    let picked = chosen;
    if (isHeic(chosen)) {
      const converted = await heicToJpeg(chosen);
      if (!converted) {
        showProblemText(
          `“${chosen.name}” is a HEIC photo, which this browser cannot convert and the service cannot read. Please export it as JPEG (on an iPhone: Settings › Camera › Formats › Most Compatible), or open this page in Safari, which converts it.`,
        );
        return;
      }
      picked = converted;
    }
    if (!["image/jpeg", "image/png", "image/webp", "image/avif"].includes(picked.type)) {
      showProblemText(`“${picked.name}” is not a photo the service can read. Please pick a JPEG, PNG, WebP or AVIF image.`);
      return;
    }
    file = picked;
    if (beforeUrl) URL.revokeObjectURL(beforeUrl);
    beforeUrl = URL.createObjectURL(picked);
    const preview = $<HTMLImageElement>("preview");
    preview.src = beforeUrl;
    preview.hidden = false;
    $("drop-text").textContent = `${picked.name}${picked === chosen ? "" : " (converted from HEIC in this browser)"} · ${formatBytes(picked.size)} — tap to choose another`;
    updateStart();
  }

  $<HTMLInputElement>("file").addEventListener("change", (event) => void pickFile((event.target as HTMLInputElement).files?.[0]));
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    void pickFile(event.dataTransfer?.files[0]);
  });
  $("start").addEventListener("click", () =>
    events.onStart({
      operation: operation!,
      params: chosenParams(),
      file: file!,
      priority: $<HTMLSelectElement>("priority").value === "batch" ? "batch" : "interactive",
      output: chosenOutput(),
      wait: $<HTMLInputElement>("wait-for-it").checked,
    }),
  );

  return {
    async load() {
      try {
        models = await client().models();
      } catch (error) {
        showProblem(error);
        return;
      }
      const box = $("operations");
      box.replaceChildren();
      for (const model of models) {
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
      const first = models.find((model) => model.available);
      if (first) {
        box.querySelector<HTMLInputElement>(`input[value="${first.operation}"]`)!.checked = true;
        chooseOperation(first.operation);
      }
    },
    updateStart,
    beforeUrl: () => beforeUrl,
  };
}

function isHeic(file: File): boolean {
  return ["image/heic", "image/heif"].includes(file.type) || /\.(heic|heif)$/i.test(file.name);
}

/**
 * A HEIC photo as a JPEG, decoded by the browser itself where it can (Safari decodes HEIC;
 * Chrome and Firefox do not, and then this answers undefined). The service has no HEVC decoder.
 */
async function heicToJpeg(file: File): Promise<File | undefined> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    return undefined;
  }
  const canvas = Object.assign(document.createElement("canvas"), { width: bitmap.width, height: bitmap.height });
  canvas.getContext("2d")?.drawImage(bitmap, 0, 0);
  bitmap.close();
  const blob = await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.92));
  if (!blob) return undefined;
  return new File([blob], file.name.replace(/\.(heic|heif)$/i, "") + ".jpg", { type: "image/jpeg" });
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
