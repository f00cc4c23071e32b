/**
 * The backends' shared request handling (triton/model_repository/request_handling.py), run in the
 * project venv by test/support/request_handling_check.py, outside Triton with a labelled stand-in
 * for Triton's Python utilities: on a CPU instance a group of requests runs one request at a time,
 * and a request cancelled meanwhile is answered CANCELLED and never computed; on a GPU the group
 * stays one batch.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { ensureTriton, type TritonInstall } from "../../local/stack/triton.js";
import { runSupportPython } from "../support/venvPython.js";

interface Outcome {
  runs: number[][];
  answers: Array<number | string>;
}

let report: { wholeBatch: Outcome; oneAtATime: Outcome; oneAtATimeNoCancel: Outcome; rowsPerRun: { CPU: number | null; GPU: number | null } };

beforeAll(async () => {
  const install: TritonInstall = await ensureTriton();
  report = JSON.parse(await runSupportPython(install, "request_handling_check.py", [])) as typeof report;
}, 300_000);

describe("request handling in the Python backends", () => {
  it("runs a CPU instance's group one request at a time and skips a request cancelled before its turn", () => {
    expect(report.rowsPerRun).toEqual({ CPU: 1, GPU: null });
    expect(report.oneAtATime.runs).toEqual([[0], [1], [3]]);
    expect(report.oneAtATime.answers).toEqual([10, 11, "CANCELLED", 13]);
    expect(report.oneAtATimeNoCancel.runs).toEqual([[0], [1], [2], [3]]);
    expect(report.oneAtATimeNoCancel.answers).toEqual([10, 11, 12, 13]);
  });

  it("keeps a GPU instance's group one batch, which a cancel cannot stop once it runs", () => {
    expect(report.wholeBatch.runs).toEqual([[0, 1, 2, 3]]);
    expect(report.wholeBatch.answers).toEqual([10, 11, 12, 13]);
  });
});
