/**
 * The slow tiers of `npm test`, in two lanes side by side: int then e2e in one, faults in the
 * other. Each tier starts its own emulators, Triton and stack on free ports, so they share
 * nothing at run time; what they would otherwise build on first use (the Triton venv and models,
 * fake-gcs-server, Toxiproxy, the web app, the photos) is built here first, once, so that two
 * tiers never build the same thing at once. The faults tier mostly waits (leases, deadlines,
 * blackouts), so the lanes overlap its waiting with the others' work.
 *
 * Each tier's output goes to .local/logs/tiers/<tier>.log and is printed whole when the tier ends,
 * so the lanes' lines do not interleave. Exits 1 if any tier failed; every tier runs to its end.
 */
import { spawn } from "node:child_process";
import { createWriteStream, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ensurePhotos } from "../../local/bench/photos.js";
import { ensureEmulators } from "../../local/stack/emulators.js";
import { LOCAL_DIR, REPO_ROOT } from "../../local/stack/paths.js";
import { ensureToxiproxy } from "../../local/stack/toxiproxy.js";
import { ensureTriton } from "../../local/stack/triton.js";
import { ensureUrlSignerKey } from "../../local/stack/urlSignerKey.js";
import { ensureWebBuild } from "../../local/stack/webServer.js";

const LANES: string[][] = [["test:int", "test:e2e"], ["test:faults"]];
const logDir = join(LOCAL_DIR, "logs", "tiers");
const began = performance.now();
const seconds = () => `${((performance.now() - began) / 1000).toFixed(0)} s`;
const say = (line: string) => console.log(`[tiers ${seconds()}] ${line}`);

/** Runs one npm script to its end, its output in its own log; resolves with whether it passed. */
function runTier(script: string): Promise<boolean> {
  const logFile = join(logDir, `${script.replace("test:", "")}.log`);
  const log = createWriteStream(logFile);
  say(`${script} started (its output: ${logFile})`);
  return new Promise((resolve) => {
    const child = spawn("npm", ["run", script], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"], env: process.env });
    child.stdout.pipe(log, { end: false });
    child.stderr.pipe(log, { end: false });
    const finish = (passed: boolean, why: string) => {
      log.end(() => {
        process.stdout.write(readFileSync(logFile));
        say(`${script} ${why}`);
        resolve(passed);
      });
    };
    child.on("error", (error) => finish(false, `could not start: ${error.message}`));
    child.on("close", (code) => finish(code === 0, code === 0 ? "passed" : `failed (exit ${code})`));
  });
}

/** Runs a lane's tiers one after another, stopping at the first that fails. */
async function runLane(scripts: string[]): Promise<boolean> {
  for (const script of scripts) if (!(await runTier(script))) return false;
  return true;
}

mkdirSync(logDir, { recursive: true });
say("building what the tiers share: emulators' tools, the Triton venv and models, Toxiproxy, the web app, the photos");
await ensureEmulators(say);
await Promise.all([ensureTriton(), ensureToxiproxy(say), ensureWebBuild(say), ensurePhotos()]);
ensureUrlSignerKey();
const results = await Promise.all(LANES.map(runLane));
say(results.every(Boolean) ? "every tier passed" : "a tier failed");
process.exit(results.every(Boolean) ? 0 : 1);
