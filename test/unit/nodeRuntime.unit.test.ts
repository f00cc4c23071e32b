import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

// `npm ci` brings Node 24 (the `node` devDependency) and npm scripts put it first on PATH, so every
// tier runs on the runtime that production runs (Cloud Functions nodejs24, the worker image).
describe("the Node runtime", () => {
  it("is Node 24, as production runs", () => {
    expect(Number(process.versions.node.split(".")[0])).toBe(24);
  });

  it("is the version package.json pins, and the engines field asks for it", () => {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"));
    expect(pkg.devDependencies.node).toBe(process.versions.node);
    expect(pkg.engines.node).toBe(">=24");
  });
});
