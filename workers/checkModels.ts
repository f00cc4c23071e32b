/**
 * Start-up check of a worker: every model it needs is ready on the server and has the inputs
 * and outputs the worker will send and read. Failing here beats failing on the first job.
 */
import type { InferenceClient, TensorSpec } from "../events/inferenceClient.js";

export interface ExpectedModel {
  model: string;
  /** Absent: the version the server's policy serves. */
  version?: string;
  /** Shapes as the server's metadata reports them, batch dimension included (-1 = variable). */
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

export class ModelCheckError extends Error {
  override readonly name = "ModelCheckError";
  constructor(readonly problems: string[]) {
    super(`inference models are not as expected:\n  ${problems.join("\n  ")}`);
  }
}

/** Resolves when every model matches; rejects with a `ModelCheckError` listing every mismatch. */
export async function checkModels(client: InferenceClient, expected: readonly ExpectedModel[]): Promise<void> {
  const problems: string[] = [];
  for (const want of expected) {
    const label = want.version ? `${want.model} v${want.version}` : want.model;
    try {
      if (!(await client.isModelReady(want.model, want.version))) {
        problems.push(`${label}: not ready`);
        continue;
      }
      const have = await client.describeModel(want.model, want.version);
      compare(`${label} input`, want.inputs, have.inputs, problems);
      compare(`${label} output`, want.outputs, have.outputs, problems);
    } catch (error) {
      problems.push(`${label}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  if (problems.length > 0) throw new ModelCheckError(problems);
}

function compare(label: string, wanted: TensorSpec[], actual: TensorSpec[], problems: string[]): void {
  for (const want of wanted) {
    const have = actual.find((t) => t.name === want.name);
    if (!have) {
      problems.push(`${label} ${want.name}: missing (server has ${actual.map((t) => t.name).join(", ") || "none"})`);
    } else if (have.datatype !== want.datatype || !sameShape(have.shape, want.shape)) {
      problems.push(
        `${label} ${want.name}: server has ${have.datatype} [${have.shape.join(",")}], expected ${want.datatype} [${want.shape.join(",")}]`,
      );
    }
  }
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((dim, i) => dim === b[i]);
}
