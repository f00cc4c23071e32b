/**
 * Runs the Pulumi program in infra/ under Pulumi's mocks with one stack's configuration
 * (infra/Pulumi.<stack>.yaml), and hands back every resource it declared (type, name, inputs)
 * and its stack outputs. Each run re-imports the program, so one test file can run all stacks.
 */
import { createHash } from "node:crypto";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

import * as pulumi from "@pulumi/pulumi";
import { vi } from "vitest";

export const infraProject = "image-edit";
export const mockProjectNumber = "123456789012";

export interface DeclaredResource {
  readonly type: string;
  readonly name: string;
  readonly inputs: Record<string, any>;
  readonly urn?: string;
  /** URN of the parent (component) resource, "" at the top. */
  readonly parent?: string;
  /** URNs it waits for: explicit dependsOn (components expanded to their children) and inputs. */
  readonly dependencies?: readonly string[];
  /** The customTimeouts option, as Pulumi sends it to the engine ("" where unset). */
  readonly customTimeouts?: { create: string; update: string; delete: string };
}

/** What the mocked provider functions answer; a test replaces one to plant a problem. */
export interface MockCalls {
  /** gcp.organizations.getProject */
  project?: { billingAccount?: string; labels?: Record<string, string> };
  /** gcp.cloudquota.getSQuotaInfo, by quota id: the value in force in every region. */
  quotas?: Record<string, number>;
}

export interface ProgramRun {
  readonly stack: string;
  readonly config: Record<string, string>;
  readonly resources: readonly DeclaredResource[];
  readonly outputs: Record<string, unknown>;
  /** Every provider function the program called (token and arguments), in order. */
  readonly calls: ReadonlyArray<{ token: string; inputs: Record<string, any> }>;
  /** The one resource of `type` named `name`; fails loudly when there is not exactly one. */
  one(type: string, name: string): DeclaredResource;
  all(type: string): DeclaredResource[];
  /**
   * Whether `resource` waits for `target` before Pulumi creates it: `target` (or, for a component,
   * one of its resources) is among its dependencies or those of a component it belongs to.
   */
  waitsFor(resource: DeclaredResource, target: DeclaredResource): boolean;
}

/** `key: value` pairs under `config:` in a Pulumi.<stack>.yaml (scalars and quoted JSON only). */
export function readStackConfig(stack: string): Record<string, string> {
  const text = readFileSync(new URL(`../../infra/Pulumi.${stack}.yaml`, import.meta.url), "utf8");
  const config: Record<string, string> = {};
  let inConfig = false;
  for (const line of text.split("\n")) {
    if (/^\s*(#|$)/.test(line)) continue;
    if (/^config:\s*$/.test(line)) {
      inConfig = true;
      continue;
    }
    const entry = /^ {2}([\w:-]+):\s+(.+?)\s*$/.exec(line);
    if (!inConfig || !entry) throw new Error(`Pulumi.${stack}.yaml: cannot read line "${line}"`);
    const [, key, raw] = entry as unknown as [string, string, string];
    config[key] = raw.startsWith('"')
      ? (JSON.parse(raw) as string)
      : raw.startsWith("'")
        ? raw.slice(1, -1).replaceAll("''", "'")
        : raw;
  }
  return config;
}

/** A project with billing, added to Firebase, with GPU quota to spare. */
export const healthyProject: Required<MockCalls> = {
  project: { billingAccount: "012345-6789AB-CDEF01", labels: { firebase: "enabled" } },
  quotas: {},
};

/** GPU quota the mocks report for any quota id not named in `MockCalls.quotas`. */
const ampleQuota = 64;

export async function runInfraProgram(
  stack: string,
  overrides: Record<string, string> = {},
  answering: MockCalls = {},
): Promise<ProgramRun> {
  const config: Record<string, string> = {
    "image-edit:modelRepositoryDir": modelRepositoryFixture(),
    ...readStackConfig(stack),
    ...overrides,
  };
  const project = config["gcp:project"] as string;
  const answers = { ...healthyProject, ...answering };
  const resources: DeclaredResource[] = [];
  const registrations: Registration[] = [];
  const calls: Array<{ token: string; inputs: Record<string, any> }> = [];
  vi.resetModules();
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        const resource = { type: args.type, name: args.name, inputs: args.inputs };
        resources.push(resource);
        const { id, state } = mockState(project, args.type, args.name, args.inputs);
        return { id, state };
      },
      call(args) {
        calls.push({ token: args.token, inputs: args.inputs });
        switch (args.token) {
          case "gcp:organizations/getProject:getProject":
            return { projectId: project, number: mockProjectNumber, ...answers.project };
          case "gcp:storage/getProjectServiceAccount:getProjectServiceAccount":
            return { emailAddress: `service-${mockProjectNumber}@gs-project-accounts.iam.gserviceaccount.com` };
          case "gcp:cloudquota/getSQuotaInfo:getSQuotaInfo": {
            const quotaId = args.inputs.quotaId as string;
            const value = answers.quotas[quotaId] ?? ampleQuota;
            return { quotaId, dimensionsInfos: [{ dimensions: {}, details: [{ value: String(value) }], applicableLocations: [] }] };
          }
          default:
            throw new Error(`unmocked call ${args.token}`);
        }
      },
    },
    infraProject,
    stack,
    // A preview, as `pulumi preview` would run it (the functions' dist/ need not be built).
    true,
  );
  recordRegistrations(registrations);
  pulumi.runtime.setAllConfig(config);
  const program = (await import("../../infra/index.js")) as Record<string, unknown>;
  await pulumi.runtime.disconnect();
  for (const [i, resource] of resources.entries()) {
    const at = registrations.findIndex((r) => r.type === resource.type && r.name === resource.name);
    if (at < 0) continue;
    const [registration] = registrations.splice(at, 1);
    resources[i] = { ...resource, ...registration };
  }
  const outputs: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(program)) {
    outputs[key] = pulumi.Output.isInstance(value) ? await resolved(value) : value;
  }
  const all = (type: string) => resources.filter((r) => r.type === type);
  const byUrn = new Map(resources.map((r) => [r.urn, r]));
  const within = (urn: string, ancestor: string): boolean =>
    urn === ancestor || (!!urn && within(byUrn.get(urn)?.parent ?? "", ancestor));
  return {
    stack,
    config,
    resources,
    outputs,
    calls,
    all,
    waitsFor(resource, target) {
      if (!target.urn) throw new Error(`${target.name} was not registered`);
      for (let urn = resource.urn ?? ""; urn; urn = byUrn.get(urn)?.parent ?? "") {
        const deps = byUrn.get(urn)?.dependencies ?? [];
        if (deps.some((dep) => within(dep, target.urn as string))) return true;
      }
      return false;
    },
    one(type, name) {
      const found = all(type).filter((r) => r.name === name);
      if (found.length !== 1) {
        throw new Error(`${found.length} resources of ${type} named ${name}; have ${all(type).map((r) => r.name).join(", ")}`);
      }
      return found[0] as DeclaredResource;
    },
  };
}

type Registration = Required<Omit<DeclaredResource, "inputs">>;

/**
 * Pulumi's mocks hand `newResource` only the type, name and inputs; the dependencies, parent and
 * custom timeouts travel in the registration request. This keeps them, by URN.
 */
function recordRegistrations(into: Registration[]): void {
  const monitor = pulumi.runtime.getMonitor() as unknown as {
    registerResource(req: any, callback: (err: unknown, res: any) => void): void;
  };
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, callback) =>
    register(req, (err, res) => {
      if (res) {
        const timeouts = req.getCustomtimeouts();
        into.push({
          urn: res.getUrn(),
          type: req.getType(),
          name: req.getName(),
          parent: req.getParent(),
          dependencies: req.getDependenciesList(),
          customTimeouts: {
            create: timeouts?.getCreate() ?? "",
            update: timeouts?.getUpdate() ?? "",
            delete: timeouts?.getDelete() ?? "",
          },
        });
      }
      callback(err, res);
    });
}

/**
 * A model repository like triton/model_repository with every weight file in place: the real
 * configs and backends, and a few bytes standing in for each ONNX file `npm run models` would
 * write (a fresh clone has none; the program refuses to upload a repository without them).
 */
let fixture: string | undefined;
export function modelRepositoryFixture(): string {
  if (fixture) return fixture;
  const source = new URL("../../triton/model_repository", import.meta.url).pathname;
  const dir = join(mkdtempSync(join(tmpdir(), "infra-models-")), "model_repository");
  cpSync(source, dir, { recursive: true, filter: (path) => !path.endsWith(".onnx") && !path.includes("__pycache__") });
  const weights = ["upscale/1/srmdnf_x2", "upscale/1/srmdnf_x4", "upscale/1/realesrgan_x4plus"];
  // infra/models.ts's modelWeights: upscale's graphs and their float16 twins, enhance's denoiser, and ISNet.
  for (const file of [...weights.flatMap((w) => [`${w}.onnx`, `${w}.fp16.onnx`]), "enhance/1/srmd_x2_denoise.onnx", "remove_background/1/isnet_medium.onnx"]) {
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    writeFileSync(join(dir, file), `stand-in for ${file}`);
  }
  fixture = dir;
  return dir;
}

function resolved<T>(output: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => output.apply((value) => resolve(value)));
}

/** Outputs the real providers would compute, shaped as far as the program reads them. */
function mockState(
  project: string,
  type: string,
  name: string,
  inputs: Record<string, any>,
): { id: string; state: Record<string, unknown> } {
  switch (type) {
    case "gcp:serviceaccount/account:Account": {
      const email = `${inputs.accountId}@${project}.iam.gserviceaccount.com`;
      return { id: email, state: { ...inputs, email, name: `projects/${project}/serviceAccounts/${email}` } };
    }
    case "gcp:pubsub/topic:Topic":
      return { id: `projects/${project}/topics/${inputs.name}`, state: inputs };
    case "gcp:pubsub/subscription:Subscription":
      return { id: `projects/${project}/subscriptions/${inputs.name}`, state: inputs };
    case "gcp:storage/bucket:Bucket":
      return { id: inputs.name, state: { ...inputs, url: `gs://${inputs.name}` } };
    case "gcp:container/cluster:Cluster":
      return {
        id: `projects/${project}/locations/${inputs.location}/clusters/${inputs.name}`,
        state: { ...inputs, endpoint: "203.0.113.10", masterAuth: { clusterCaCertificate: "Y2EtY2VydA==" } },
      };
    case "gcp:cloudfunctionsv2/function:Function":
      return { id: `${name}-id`, state: { ...inputs, url: `https://${inputs.name}-mock.a.run.app` } };
    case "gcp:artifactregistry/repository:Repository":
      return { id: `${name}-id`, state: { ...inputs, name: inputs.repositoryId } };
    case "gcp:firebaserules/ruleset:Ruleset":
      return { id: `${name}-id`, state: { ...inputs, name: "mock-ruleset-id" } };
    case "gcp:projects/serviceIdentity:ServiceIdentity": {
      const agent = String(inputs.service).split(".")[0];
      return { id: `${name}-id`, state: { ...inputs, email: `service-${mockProjectNumber}@gcp-sa-${agent}.iam.gserviceaccount.com` } };
    }
    case "gcp:monitoring/notificationChannel:NotificationChannel":
      return { id: `${name}-id`, state: { ...inputs, name: `projects/${project}/notificationChannels/${name}` } };
    case "command:local:Command":
      // What the build script prints: the pushed image's digest.
      return { id: `${name}-id`, state: { ...inputs, stdout: `sha256:${createHash("sha256").update(name).digest("hex")}\n` } };
    default:
      return { id: `${name}-id`, state: inputs };
  }
}
