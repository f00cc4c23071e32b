/**
 * The result's file format, as the person asks for it: PNG (the default, lossless, keeps
 * transparency), JPEG (lossy, no transparency) or WebP (lossy, keeps transparency), with a
 * quality for the lossy two and an optional background colour that transparency is flattened
 * onto. Pure rules; the API parses requests with `checkOutputFormat`, the worker encodes with it.
 */
import type { Operation } from "./operations.js";

export const OUTPUT_FORMATS = ["png", "jpeg", "webp"] as const;
export type OutputFormatName = (typeof OUTPUT_FORMATS)[number];

export interface OutputFormat {
  format: OutputFormatName;
  /** 1 to 100, for `jpeg` and `webp`; `DEFAULT_QUALITY` when absent. */
  quality?: number;
  /** `#rrggbb`: transparent pixels are laid on this colour, and the result has none. */
  background?: string;
}

export const DEFAULT_OUTPUT_FORMAT: OutputFormat = { format: "png" };
export const DEFAULT_QUALITY = 90;
export const BACKGROUND_PATTERN = /^#[0-9a-fA-F]{6}$/;

export const CONTENT_TYPES: Record<OutputFormatName, string> = { png: "image/png", jpeg: "image/jpeg", webp: "image/webp" };
export const FILE_EXTENSIONS: Record<OutputFormatName, string> = { png: "png", jpeg: "jpg", webp: "webp" };

/** Operations whose result is transparent where the image was removed. */
const TRANSPARENT_RESULTS: readonly Operation[] = ["remove_background"];

export type OutputFormatCheck = { ok: true; output: OutputFormat } | { ok: false; field: string; message: string };

/**
 * Checks a requested output format for `operation`. The input is the JSON body's `output` object,
 * or the direct flow's `output.*` query values as strings; absent, the default (PNG) applies.
 */
export function checkOutputFormat(operation: Operation, raw: unknown): OutputFormatCheck {
  if (raw === undefined) return { ok: true, output: DEFAULT_OUTPUT_FORMAT };
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return { ok: false, field: "output", message: "must be an object such as {\"format\":\"webp\",\"quality\":80}" };
  }
  const fields = raw as Record<string, unknown>;
  const unknown = Object.keys(fields).filter((name) => !["format", "quality", "background"].includes(name));
  if (unknown.length > 0) return { ok: false, field: `output.${unknown[0]}`, message: "is not a field of output; it takes format, quality and background" };
  const format = fields.format;
  if (typeof format !== "string" || !(OUTPUT_FORMATS as readonly string[]).includes(format)) {
    return { ok: false, field: "output.format", message: `must be one of ${OUTPUT_FORMATS.join(", ")}` };
  }
  const output: OutputFormat = { format: format as OutputFormatName };
  if (fields.quality !== undefined) {
    const quality = typeof fields.quality === "string" && /^\d+$/.test(fields.quality) ? Number(fields.quality) : fields.quality;
    if (typeof quality !== "number" || !Number.isInteger(quality) || quality < 1 || quality > 100) {
      return { ok: false, field: "output.quality", message: "must be a whole number from 1 to 100" };
    }
    if (output.format === "png") return { ok: false, field: "output.quality", message: "applies to jpeg and webp only; PNG is lossless" };
    output.quality = quality;
  }
  if (fields.background !== undefined) {
    if (typeof fields.background !== "string" || !BACKGROUND_PATTERN.test(fields.background)) {
      return { ok: false, field: "output.background", message: "must be a colour written #rrggbb, such as #ffffff" };
    }
    output.background = fields.background.toLowerCase();
  }
  if (output.format === "jpeg" && output.background === undefined && TRANSPARENT_RESULTS.includes(operation)) {
    return {
      ok: false,
      field: "output.format",
      message:
        "JPEG cannot carry transparency, and background removal's result is transparent where the background was; ask for png or webp, or give output.background (such as \"#ffffff\") to put the subject on that colour",
    };
  }
  return { ok: true, output };
}

/** The colour transparency is flattened onto, as RGB bytes, or undefined when it is kept. */
export function flattenColour(output: OutputFormat): [number, number, number] | undefined {
  // JPEG has no alpha: without a colour asked for, white, as most viewers show a transparent photo.
  const hex = output.background ?? (output.format === "jpeg" ? "#ffffff" : undefined);
  if (hex === undefined) return undefined;
  return [Number.parseInt(hex.slice(1, 3), 16), Number.parseInt(hex.slice(3, 5), 16), Number.parseInt(hex.slice(5, 7), 16)];
}
