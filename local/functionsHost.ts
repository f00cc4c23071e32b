/**
 * Runs one function of `functions/index.ts` under the Functions Framework on 127.0.0.1. The
 * framework's own CLI listens on every interface and has no host option, so this host loads
 * the module (which registers the functions) and binds the framework's server for the target
 * to the loopback address. Usage: functionsHost.ts <target> <port>
 */
import { getTestServer } from "@google-cloud/functions-framework/testing";

const [target, port] = process.argv.slice(2);
if (!target || !port) {
  console.error("usage: functionsHost.ts <target> <port>");
  process.exit(2);
}

await import("../functions/index.js");
const server = getTestServer(target).listen(Number(port), "127.0.0.1", () => {
  console.log(`function ${target} listening on http://127.0.0.1:${port}/`);
});

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 3_000).unref();
  });
}
