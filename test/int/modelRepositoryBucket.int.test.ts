/**
 * The model repository as production serves it: uploaded to a bucket and read by Triton from
 * gs:// (here fake-gcs-server, which Triton's Cloud Storage client reaches through
 * CLOUD_STORAGE_EMULATOR_ENDPOINT). Triton copies each model's folder from the bucket on its own,
 * so the Python the models share (triton/model_repository/request_handling.py, gaussian_blur.py)
 * reaches them only through the links in their folders: an upload that follows the links, as
 * `gcloud storage rsync --no-ignore-symlinks` does (infra/README.md), serves; one that skips them
 * does not. Two models keep it short: comic (both shared modules) and upscale (ONNX).
 */
import { randomUUID } from "node:crypto";
import { lstatSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { LOCAL_DIR } from "../../local/stack/paths.js";
import { DEFAULT_MODEL_REPOSITORY } from "../../local/stack/triton.js";
import { emulatorClients } from "../support/clients.js";
import { startTestTriton, type TestTriton } from "../support/tritonServer.js";

const services = inject("services");
const { storage } = emulatorClients(services);
const bucketName = `models-${randomUUID()}`;
const MODELS = ["comic", "upscale"];
let running: TestTriton | undefined;

/** Uploads the repository's root files and the MODELS' folders under `prefix`; returns the object names. */
async function upload(prefix: string, followLinks: boolean): Promise<string[]> {
  const names: string[] = [];
  const walk = async (folder: string, relative: string): Promise<void> => {
    for (const entry of readdirSync(folder)) {
      const path = join(folder, entry);
      const name = relative ? `${relative}/${entry}` : entry;
      const stat = lstatSync(path);
      if (stat.isDirectory()) {
        if (entry !== "__pycache__" && (relative || MODELS.includes(entry))) await walk(path, name);
      } else if (stat.isFile() || (stat.isSymbolicLink() && followLinks)) {
        await storage.bucket(bucketName).upload(path, { destination: `${prefix}/${name}` });
        names.push(name);
      }
    }
  };
  await walk(DEFAULT_MODEL_REPOSITORY, "");
  return names;
}

function startFromBucket(prefix: string): Promise<TestTriton> {
  return startTestTriton({
    modelRepository: `gs://${bucketName}/${prefix}`,
    env: { CLOUD_STORAGE_EMULATOR_ENDPOINT: services.storageUrl },
    logFile: join(LOCAL_DIR, "logs", `triton-bucket-${prefix}.log`),
  });
}

/** One KServe v2 JSON inference of a 2x2 tile. */
async function infer(httpUrl: string, model: string, setting: { name: string; datatype: string; value: number }) {
  const response = await fetch(`${httpUrl}/v2/models/${model}/infer`, {
    method: "POST",
    body: JSON.stringify({
      inputs: [
        { name: "IMAGE", shape: [1, 2, 2, 3], datatype: "UINT8", data: [10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120] },
        { name: setting.name, shape: [1, 1], datatype: setting.datatype, data: [setting.value] },
      ],
    }),
  });
  return { status: response.status, body: (await response.json()) as { outputs?: { shape: number[]; data: number[] }[]; error?: string } };
}

beforeAll(async () => {
  await storage.createBucket(bucketName);
}, 600_000);

afterAll(async () => {
  await running?.stop();
});

describe("the model repository read from a bucket", () => {
  it("serves the models with their shared Python when the upload follows the links", async () => {
    const prefix = `followed-${randomUUID()}`;
    const uploaded = await upload(prefix, true);
    expect(uploaded).toEqual(expect.arrayContaining(["request_handling.py", "comic/1/request_handling.py", "comic/1/gaussian_blur.py", "upscale/1/request_handling.py"]));

    const triton = await startFromBucket(prefix);
    running = triton;
    const index = (await (await fetch(`${triton.httpUrl}/v2/repository/index`, { method: "POST" })).json()) as { name: string; state: string }[];
    expect(index.map(({ name, state }) => `${name} ${state}`).sort()).toEqual(["comic READY", "upscale READY"]);

    // Strength 0 leaves the tile as it is; a strength out of range is refused by request_handling.
    const unchanged = await infer(triton.httpUrl, "comic", { name: "STRENGTH", datatype: "FP32", value: 0 });
    expect(unchanged.body.outputs?.[0]?.data).toEqual([10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120]);
    const refused = await infer(triton.httpUrl, "comic", { name: "STRENGTH", datatype: "FP32", value: 3 });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe("STRENGTH must be one value in [0, 1] for every row of a request, got [3.0]");
    const upscaled = await infer(triton.httpUrl, "upscale", { name: "SCALE", datatype: "UINT8", value: 2 });
    expect(upscaled.body.outputs?.[0]?.shape).toEqual([1, 4, 4, 3]);

    await triton.stop();
    running = undefined;
  }, 300_000);

  it("does not start when the upload skips the links, though the shared files sit at the repository's root", async () => {
    const prefix = `skipped-${randomUUID()}`;
    const uploaded = await upload(prefix, false);
    expect(uploaded).toContain("request_handling.py");
    expect(uploaded).not.toContain("comic/1/request_handling.py");

    const logFile = join(LOCAL_DIR, "logs", `triton-bucket-${prefix}.log`);
    await expect(startFromBucket(prefix)).rejects.toThrow(/exited during start-up|was not ready/);
    // upscale's model.py imports onnx_sessions first, comic's request_handling: either is missing.
    expect(readFileSync(logFile, "utf8")).toMatch(/No module named '(request_handling|onnx_sessions)'/);
  }, 300_000);
});
