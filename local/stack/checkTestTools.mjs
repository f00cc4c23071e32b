/**
 * `npm test`'s first step (the `pretest` script): checks the system tools the test tiers run
 * (the same list `.ci/run` installs) and, when any is missing, stops in well under a second with
 * the one command that installs them all, instead of failing minutes later in the tier that
 * first needs one. Plain Node, no TypeScript loader: it must cost nothing when all is there.
 */
import { spawnSync } from "node:child_process";
import { accessSync, constants, existsSync, readdirSync } from "node:fs";
import { delimiter, join } from "node:path";

const SDK = "/usr/lib/google-cloud-sdk/platform";

/** Each tool: how to find it, what needs it, and the Debian package that brings it. */
const tools = [
  { what: "java", why: "the Firestore and Pub/Sub emulators (int, e2e)", found: () => onPath("java"), pkg: "openjdk-17-jre-headless" },
  { what: "go", why: "building fake-gcs-server, the Cloud Storage emulator (int, e2e)", found: () => onPath("go"), pkg: "golang-go" },
  { what: "dpkg-deb", why: "unpacking the test photos' Debian package", found: () => onPath("dpkg-deb"), pkg: "dpkg" },
  { what: "/usr/bin/chromium", why: "the web app's browser test (e2e)", found: () => existsSync("/usr/bin/chromium"), pkg: "chromium" },
  {
    what: "the Firestore emulator",
    why: "every int and e2e test",
    found: () => existsSync(`${SDK}/cloud-firestore-emulator/cloud-firestore-emulator.jar`),
    pkg: "google-cloud-cli-firestore-emulator",
  },
  {
    what: "the Pub/Sub emulator",
    why: "every int and e2e test",
    found: () => existsSync(`${SDK}/pubsub-emulator/lib`) && readdirSync(`${SDK}/pubsub-emulator/lib`).some((f) => f.endsWith("-all.jar")),
    pkg: "google-cloud-cli-pubsub-emulator",
  },
];

const missing = tools.filter((tool) => !tool.found());
const python = pythonProblem();
if (python) missing.push(python);

if (missing.length > 0) {
  const packages = [...new Set(missing.map((tool) => tool.pkg).filter(Boolean))];
  const sudo = process.getuid?.() === 0 ? "" : "sudo ";
  const lines = [
    "npm test needs system tools this machine lacks:",
    ...missing.map((tool) => `  - ${tool.what}: ${tool.why}`),
    "",
    "Install them with (Debian/Ubuntu; .ci/run does the same):",
    `  ${sudo}apt-get update && ${sudo}apt-get install -y ${packages.join(" ")}`,
  ];
  if (packages.some((p) => p.startsWith("google-cloud-cli"))) {
    lines.push("(the google-cloud-cli-* packages come from Google's Cloud SDK apt repository: https://cloud.google.com/sdk/docs/install#deb)");
  }
  if (missing.some((tool) => !tool.pkg)) lines.push("Then fix the Python problem above (it has no package to install).");
  console.error(lines.join("\n"));
  process.exit(1);
}

/** Whether `name` is an executable file in a PATH folder (no process spawned). */
function onPath(name) {
  return (process.env.PATH ?? "").split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, name), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * python3 must make venvs (the Triton venv) and have a shared libpython (Triton's Python backend
 * stub links it). One short python3 run answers both.
 */
function pythonProblem() {
  if (!onPath("python3")) return { what: "python3", why: "the Triton venv (int, e2e)", pkg: "python3-venv" };
  const probe = spawnSync(
    "python3",
    [
      "-c",
      [
        "import os, sysconfig",
        "try:\n    import venv, ensurepip\n    v = 1\nexcept ImportError:\n    v = 0",
        "lib = os.path.join(sysconfig.get_config_var('LIBDIR') or '', sysconfig.get_config_var('LDLIBRARY') or '')",
        "print(v, int(('.so' in lib) and os.path.exists(lib)))",
      ].join("\n"),
    ],
    { encoding: "utf8", timeout: 5000 },
  );
  const [venv, shared] = (probe.stdout ?? "").trim().split(" ");
  if (venv !== "1") return { what: "python3's venv and ensurepip modules", why: "the Triton venv (int, e2e)", pkg: "python3-venv" };
  if (shared !== "1") {
    return { what: "a shared libpython", why: "Triton's Python backend (int, e2e); use a python3 built with --enable-shared", pkg: "" };
  }
  return undefined;
}
