/**
 * The model repository in the models bucket: every file of triton/model_repository (the configs,
 * the Python backends and the ONNX weights `npm run models` writes), one object each, so that
 * `pulumi up` uploads what changed and deletes what was removed. Triton reads it at start.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join, relative, sep } from "node:path";

import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";

import type { InfraConfig } from "./config.js";
import { modelRepositoryPrefix } from "./storage.js";

export interface ModelRepositoryArgs {
  config: InfraConfig;
  modelsBucket: pulumi.Input<string>;
  /** `modelRepositoryFiles(config)`, checked before anything else is declared. */
  files: readonly string[];
}

export class ModelRepository extends pulumi.ComponentResource {
  /** One object per file; Triton's Deployment waits for all of them. */
  readonly objects: gcp.storage.BucketObject[];

  constructor(name: string, args: ModelRepositoryArgs, opts?: pulumi.ComponentResourceOptions) {
    super("image-edit:infra:ModelRepository", name, {}, opts);
    const { config } = args;
    this.objects = args.files.map(
      (file) =>
        new gcp.storage.BucketObject(
          `model-${file}`,
          {
            bucket: args.modelsBucket,
            name: `${modelRepositoryPrefix}/${file}`,
            source: new pulumi.asset.FileAsset(join(config.modelRepositoryDir, file)),
          },
          { parent: this },
        ),
    );
    this.registerOutputs({});
  }
}

/**
 * The ONNX files `npm run models` writes, which the models' model.py files load: the `.fp16.onnx`
 * twins are what upscale's GPU config serves (ONNX_PRECISION fp16, docs/gpu.md).
 */
export const modelWeights: Readonly<Record<string, readonly string[]>> = {
  upscale: [
    "1/srmdnf_x2.onnx",
    "1/srmdnf_x4.onnx",
    "1/srmdnf_x2.fp16.onnx",
    "1/srmdnf_x4.fp16.onnx",
    "1/realesrgan_x4plus.onnx",
    "1/realesrgan_x4plus.fp16.onnx",
  ],
  enhance: ["1/srmd_x2_denoise.onnx"],
  remove_background: ["1/isnet_medium.onnx"],
};

/**
 * The files of the model repository to upload, relative to it, or a sentence saying what is
 * missing. Checked at preview too: a Triton that starts without its weights fails every job.
 */
export function modelRepositoryFiles(config: Pick<InfraConfig, "modelRepositoryDir" | "excludedModels">): string[] {
  const dir = config.modelRepositoryDir;
  if (!existsSync(dir)) throw new Error(`the model repository ${dir} does not exist (modelRepositoryDir)`);
  const models = readdirSync(dir).filter(
    (entry) => statSync(join(dir, entry)).isDirectory() && !config.excludedModels.includes(entry),
  );
  const missing = models.flatMap((model) =>
    (modelWeights[model] ?? []).map((file) => join(model, file)).filter((file) => !existsSync(join(dir, file))),
  );
  if (missing.length > 0) {
    throw new Error(
      `the model repository lacks ${missing.join(", ")}: run \`npm run models\` at the repository root ` +
        `before \`pulumi up\` (it builds them from their pinned packages, a few minutes)`,
    );
  }
  return models.flatMap((model) => filesUnder(join(dir, model)).map((file) => relative(dir, file).split(sep).join("/")));
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((entry) => {
      if (entry === "__pycache__" || entry.endsWith(".tmp")) return [];
      const path = join(dir, entry);
      return statSync(path).isDirectory() ? filesUnder(path) : [path];
    });
}
