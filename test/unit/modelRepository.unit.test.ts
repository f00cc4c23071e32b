import { lstatSync, readdirSync, readFileSync, readlinkSync, realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const repository = fileURLToPath(new URL("../../triton/model_repository/", import.meta.url));
const models = readdirSync(repository, { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name);

/** Every `import x` / `from x import` of a model's Python files that names a module at the repository root. */
function sharedImports(model: string): string[] {
  const shared = readdirSync(repository).filter((name) => name.endsWith(".py")).map((name) => name.slice(0, -3));
  const folder = join(repository, model, "1");
  const sources = readdirSync(folder)
    .filter((name) => name.endsWith(".py") && !lstatSync(join(folder, name)).isSymbolicLink())
    .map((name) => readFileSync(join(folder, name), "utf8"));
  return shared.filter((module) => sources.some((source) => new RegExp(`^(from ${module} import|import ${module})\\b`, "m").test(source)));
}

// Triton hands a Python model only its own folder (from a gs:// repository, a copy of it), so the
// modules the models share (triton/model_repository/*.py, which Triton does not load as models)
// reach each model through a link in its version folder; see request_handling.py.
describe("the model repository's shared Python modules", () => {
  it("finds the five models", () => {
    expect(models.sort()).toEqual(["aged", "comic", "enhance", "remove_background", "upscale"]);
  });

  it.each(models)("%s links every shared module it imports into its version folder", (model) => {
    const imports = sharedImports(model);
    expect(imports).toContain("request_handling");
    for (const module of imports) {
      const link = join(repository, model, "1", `${module}.py`);
      expect(lstatSync(link).isSymbolicLink(), `${link} is a link`).toBe(true);
      expect(readlinkSync(link)).toBe(`../../${module}.py`);
      expect(realpathSync(link)).toBe(realpathSync(join(repository, `${module}.py`)));
    }
  });
});
