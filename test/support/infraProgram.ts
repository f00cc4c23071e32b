/**
 * Runs the Pulumi program in infra/ under Pulumi's mocks with one stack's configuration
 * (infra/Pulumi.<stack>.yaml), and hands back every resource it declared (type, name, inputs)
 * and its stack outputs. Each run re-imports the program, so one test file can run all stacks.
 */
import { readFileSync } from "node:fs";

import * as pulumi from "@pulumi/pulumi";
import { vi } from "vitest";

export const infraProject = "image-edit";
export const mockProjectNumber = "123456789012";

export interface DeclaredResource {
  readonly type: string;
  readonly name: string;
  readonly inputs: Record<string, any>;
}

export interface ProgramRun {
  readonly stack: string;
  readonly config: Record<string, string>;
  readonly resources: readonly DeclaredResource[];
  readonly outputs: Record<string, unknown>;
  /** The one resource of `type` named `name`; fails loudly when there is not exactly one. */
  one(type: string, name: string): DeclaredResource;
  all(type: string): DeclaredResource[];
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

export async function runInfraProgram(
  stack: string,
  overrides: Record<string, string> = {},
): Promise<ProgramRun> {
  const config = { ...readStackConfig(stack), ...overrides };
  const project = config["gcp:project"] as string;
  const resources: DeclaredResource[] = [];
  vi.resetModules();
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        resources.push({ type: args.type, name: args.name, inputs: args.inputs });
        const { id, state } = mockState(project, args.type, args.name, args.inputs);
        return { id, state };
      },
      call(args) {
        switch (args.token) {
          case "gcp:organizations/getProject:getProject":
            return { projectId: project, number: mockProjectNumber };
          case "gcp:storage/getProjectServiceAccount:getProjectServiceAccount":
            return { emailAddress: `service-${mockProjectNumber}@gs-project-accounts.iam.gserviceaccount.com` };
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
  pulumi.runtime.setAllConfig(config);
  const program = (await import("../../infra/index.js")) as Record<string, unknown>;
  await pulumi.runtime.disconnect();
  const outputs: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(program)) {
    outputs[key] = pulumi.Output.isInstance(value) ? await resolved(value) : value;
  }
  const all = (type: string) => resources.filter((r) => r.type === type);
  return {
    stack,
    config,
    resources,
    outputs,
    all,
    one(type, name) {
      const found = all(type).filter((r) => r.name === name);
      if (found.length !== 1) {
        throw new Error(`${found.length} resources of ${type} named ${name}; have ${all(type).map((r) => r.name).join(", ")}`);
      }
      return found[0] as DeclaredResource;
    },
  };
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
    default:
      return { id: `${name}-id`, state: inputs };
  }
}
