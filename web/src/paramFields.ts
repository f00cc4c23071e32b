/**
 * How to ask for one parameter of an edit, read generically from GET /v1/models, so that a
 * parameter added to the catalogue appears in the app with no change here.
 */
import type { ParamInfo } from "../../client/editTypes.js";

export type ParamField =
  | { control: "choice"; name: string; label: string; help: string; options: Array<number | string>; value: string }
  | { control: "range"; name: string; label: string; help: string; min: number; max: number; step: number; value: string }
  | { control: "toggle"; name: string; label: string; help: string; value: boolean }
  | { control: "text"; name: string; label: string; help: string; value: string };

export function paramField(name: string, info: ParamInfo): ParamField {
  const label = name.replace(/[_-]+/g, " ").replace(/^./, (first) => first.toUpperCase());
  const help = [info.description ?? "", info.default === undefined ? "" : `Default: ${String(info.default)}.`].filter(Boolean).join(" ");
  if (Array.isArray(info.allowed) && info.allowed.length > 0) {
    return { control: "choice", name, label, help, options: [...info.allowed], value: String(info.default ?? info.allowed[0]) };
  }
  if (typeof info.min === "number" && typeof info.max === "number" && info.max > info.min) {
    const integer = info.kind === "integer";
    const step = integer ? 1 : niceStep(info.max - info.min);
    return { control: "range", name, label, help, min: info.min, max: info.max, step, value: String(info.default ?? info.min) };
  }
  if (info.kind === "boolean" || typeof info.default === "boolean") {
    return { control: "toggle", name, label, help, value: info.default === true };
  }
  return { control: "text", name, label, help, value: info.default === undefined ? "" : String(info.default) };
}

/** A step that gives about a hundred positions across the range, rounded to 1, 2 or 5 × 10^n. */
function niceStep(span: number): number {
  const raw = span / 100;
  const power = 10 ** Math.floor(Math.log10(raw));
  const scaled = raw / power;
  return (scaled < 1.5 ? 1 : scaled < 3.5 ? 2 : 5) * power;
}

/** The value to send: numbers as numbers where the field is numeric. */
export function fieldValue(field: ParamField, raw: string | boolean): number | string | boolean {
  if (field.control === "toggle") return raw === true;
  if (field.control === "range") return Number(raw);
  if (field.control === "choice") {
    const match = field.options.find((option) => String(option) === raw);
    return match ?? raw;
  }
  const number = Number(raw);
  return raw !== "" && Number.isFinite(number) ? number : String(raw);
}

/** Status words for a person. */
export function statusWords(status: string): string {
  switch (status) {
    case "awaiting_upload":
      return "Waiting for the photo to arrive.";
    case "queued":
      return "In the queue; a worker will pick it up shortly.";
    case "running":
      return "Being edited now.";
    case "succeeded":
      return "Done.";
    case "failed":
      return "The edit failed.";
    case "canceled":
      return "Canceled.";
    default:
      return status;
  }
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
