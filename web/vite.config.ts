import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

// The web app: plain TypeScript and CSS, no framework, so the first load stays small.
export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  build: { outDir: "dist", emptyOutDir: true, target: "es2022", sourcemap: false },
  logLevel: "warn",
});
