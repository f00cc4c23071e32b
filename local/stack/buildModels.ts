/**
 * `npm run models`: builds the model repository's files from their pinned packages (the ONNX
 * graphs of upscale, enhance and remove_background), in the project's Python venv, without starting
 * anything.
 */
import { DEFAULT_MODEL_REPOSITORY, ensureTriton } from "./triton.js";

await ensureTriton();
console.log(`model repository ready: ${DEFAULT_MODEL_REPOSITORY}`);
