/**
 * Runs one function of `functions/index.ts` under the Functions Framework on 127.0.0.1. The
 * framework's own CLI listens on every interface and has no host option, so this host loads
 * the module (which registers the functions) and binds the framework's server for the target
 * to the loopback address. Usage: functionsHost.ts <target> <port> [<target> <port> ...]: one
 * process may serve several functions, each on its own port, as the local stack does for the
 * two small background functions.
 */
import { getTestServer } from "@google-cloud/functions-framework/testing";

const args = process.argv.slice(2);
if (args.length === 0 || args.length % 2 !== 0) {
  console.error("usage: functionsHost.ts <target> <port> [<target> <port> ...]");
  process.exit(2);
}

await import("../../functions/index.js");
const servers: Array<ReturnType<ReturnType<typeof getTestServer>["listen"]>> = [];
for (let index = 0; index < args.length; index += 2) {
  const [target, port] = [args[index] as string, args[index + 1] as string];
  servers.push(
    getTestServer(target).listen(Number(port), "127.0.0.1", () => {
      console.log(`function ${target} listening on http://127.0.0.1:${port}/`);
    }),
  );
}

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    let open = servers.length;
    for (const server of servers) server.close(() => (open -= 1) || process.exit(0));
    setTimeout(() => process.exit(0), 3_000).unref();
  });
}
