/**
 * How each edit meets its Triton model: which model, tiled or whole-image, its params as
 * tensors, and the inputs and outputs the worker expects the server to report (checked at
 * start-up). The models themselves live in triton/model_repository/.
 */
import type { Tensor, TensorSpec } from "../../events/inferenceClient.js";
import { OPERATION_SPECS, UPSCALE_MODELS, type EditParams, type Operation, type UpscaleModel } from "../../events/operations.js";
import { MASK_SIDE } from "./backgroundEdit.js";
import type { TiledModel } from "./tiledEdit.js";

export type EditModel = ({ kind: "tiled" } & TiledModel) | { kind: "mask"; model: string };

export function editModel(operation: Operation, params: EditParams): EditModel {
  const spec = OPERATION_SPECS[operation];
  const { model } = spec;
  // The output's size comes from the catalogue, the one place that says how each edit scales.
  const scale = spec.outputScale(params);
  switch (operation) {
    case "upscale": {
      const network = (params.model ?? "psnr") as UpscaleModel;
      // MODEL: the network's index in UPSCALE_MODELS (0 SRMD, 1 Real-ESRGAN; config.pbtxt).
      const paramInputs = [uint8("SCALE", scale), uint8("MODEL", UPSCALE_MODELS.indexOf(network))];
      return { kind: "tiled", model, scale, paramInputs, minOverlap: network === "perceptual" ? PERCEPTUAL_OVERLAP : 0 };
    }
    case "enhance":
    case "comic":
    case "aged":
      return { kind: "tiled", model, scale, paramInputs: [fp32("STRENGTH", Number(params.strength))] };
    case "remove_background":
      return { kind: "mask", model };
    default: {
      const unknown: never = operation;
      throw new Error(`no model for ${String(unknown)}`);
    }
  }
}

/**
 * The context pixels Real-ESRGAN's tiles carry. Its receptive field spans far more than SRMD's
 * 12 px (23 RRDB blocks), but the weight of distant pixels fades fast: with 32 px of context a
 * tile's core matched the untiled result to PSNR ≥ 45 dB (docs/models.md, "Real-ESRGAN").
 */
export const PERCEPTUAL_OVERLAP = 32;

const image: TensorSpec = { name: "IMAGE", datatype: "UINT8", shape: [-1, -1, -1, 3] };
const imageOut: TensorSpec = { name: "IMAGE_OUT", datatype: "UINT8", shape: [-1, -1, -1, 3] };
const strengthInput: TensorSpec = { name: "STRENGTH", datatype: "FP32", shape: [-1, 1] };

/** The tensors each model must have, as the server's metadata reports them (-1: variable). */
export const MODEL_CONTRACTS: Record<Operation, { inputs: TensorSpec[]; outputs: TensorSpec[] }> = {
  upscale: {
    inputs: [image, { name: "SCALE", datatype: "UINT8", shape: [-1, 1] }, { name: "MODEL", datatype: "UINT8", shape: [-1, 1] }],
    outputs: [imageOut],
  },
  enhance: { inputs: [image, strengthInput], outputs: [imageOut] },
  comic: { inputs: [image, strengthInput], outputs: [imageOut] },
  aged: { inputs: [image, strengthInput], outputs: [imageOut] },
  remove_background: {
    inputs: [{ name: "IMAGE", datatype: "UINT8", shape: [-1, MASK_SIDE, MASK_SIDE, 3] }],
    outputs: [{ name: "MASK", datatype: "UINT8", shape: [-1, MASK_SIDE, MASK_SIDE, 1] }],
  },
};

function uint8(name: string, value: number): Tensor {
  return { name, datatype: "UINT8", shape: [1, 1], data: Uint8Array.of(value) };
}

function fp32(name: string, value: number): Tensor {
  return { name, datatype: "FP32", shape: [1, 1], data: Float32Array.of(value) };
}
