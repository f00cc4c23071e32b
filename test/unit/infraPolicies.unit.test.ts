/**
 * The guardrails in infra/policies.ts, run the way `pulumi preview --policy-pack` runs them: on
 * every resource the program declares (here, under mocks). Each passes the real program in every
 * stack, and each catches a violation planted in a copy of a real resource.
 */
import type { ResourceValidationArgs, ResourceValidationPolicy } from "@pulumi/policy";
import { beforeAll, describe, expect, it } from "vitest";

import {
  gpuPoolsTaintedWithDrivers,
  imagesByDigest,
  leastPrivilegeRoles,
  noPrimitiveRoles,
  noPublicBucket,
  podsRunUnprivileged,
  policies,
  privateCluster,
  serviceAccountAllowList,
  stackAccountGrants,
  subscriptionsDeadLetter,
  workloadIdentityEverywhere,
} from "../../infra/policies.js";
import { runInfraProgram, type DeclaredResource, type ProgramRun } from "../support/infraProgram.js";

function violations(policy: ResourceValidationPolicy, resource: DeclaredResource): string[] {
  const reported: string[] = [];
  const args = {
    type: resource.type,
    props: resource.inputs,
    urn: `urn:pulumi:test::image-edit::${resource.type}::${resource.name}`,
    name: resource.name,
    opts: { protect: false, ignoreChanges: [], aliases: [], customTimeouts: {}, additionalSecretOutputs: [] },
    stackTags: new Map<string, string>(),
    isType: () => false,
    asType: () => undefined,
    getConfig: () => ({}),
    notApplicable: () => {
      throw new Error("not applicable");
    },
  } as unknown as ResourceValidationArgs;
  const validations = [policy.validateResource ?? []].flat();
  for (const validate of validations) validate(args, (message) => reported.push(message));
  return reported;
}

/** A deep copy of a declared resource with its inputs changed by `plant`. */
function planted(resource: DeclaredResource, plant: (inputs: Record<string, any>) => void): DeclaredResource {
  const inputs = structuredClone(resource.inputs);
  plant(inputs);
  return { ...resource, inputs };
}

const runs: Record<string, ProgramRun> = {};
beforeAll(async () => {
  for (const stack of ["dev", "staging", "prod"]) runs[stack] = await runInfraProgram(stack);
  // Three program runs; a busy machine needs more than the default hook timeout.
}, 60_000);
const dev = () => runs.dev as ProgramRun;

describe.each(["dev", "staging", "prod"])("the %s stack", (stack) => {
  it.each(policies.map((p) => [p.name, p] as const))("passes %s", (_name, policy) => {
    const run = runs[stack] as ProgramRun;
    const found = run.resources.flatMap((resource) => violations(policy, resource));
    expect(found).toEqual([]);
  });
});

describe("no-public-bucket", () => {
  const uploads = () => dev().one("gcp:storage/bucket:Bucket", "uploads");

  it("catches a bucket without public access prevention or uniform access", () => {
    expect(violations(noPublicBucket, planted(uploads(), (i) => (i.publicAccessPrevention = "inherited")))).toEqual([
      'bucket uploads: publicAccessPrevention must be "enforced"',
    ]);
    expect(violations(noPublicBucket, planted(uploads(), (i) => delete i.uniformBucketLevelAccess))).toHaveLength(1);
  });

  it("catches allUsers or allAuthenticatedUsers in bucket IAM and ACLs", () => {
    const grant = dev().all("gcp:storage/bucketIAMMember:BucketIAMMember")[0] as DeclaredResource;
    expect(violations(noPublicBucket, planted(grant, (i) => (i.member = "allUsers")))).toHaveLength(1);
    const policy: DeclaredResource = {
      type: "gcp:storage/bucketIAMPolicy:BucketIAMPolicy",
      name: "planted",
      inputs: {
        bucket: "b",
        policyData: JSON.stringify({ bindings: [{ role: "roles/storage.objectViewer", members: ["allAuthenticatedUsers"] }] }),
      },
    };
    expect(violations(noPublicBucket, policy)).toHaveLength(1);
    const acl: DeclaredResource = {
      type: "gcp:storage/defaultObjectAccessControl:DefaultObjectAccessControl",
      name: "planted",
      inputs: { bucket: "b", entity: "allUsers", role: "READER" },
    };
    expect(violations(noPublicBucket, acl)).toHaveLength(1);
  });
});

describe("subscriptions-dead-letter", () => {
  const worker = () => dev().one("gcp:pubsub/subscription:Subscription", "jobs-worker");
  const handler = () => dev().one("gcp:pubsub/subscription:Subscription", "jobs-dead-letter-handler");

  it("catches a subscription with no dead-letter topic or no attempt limit", () => {
    expect(violations(subscriptionsDeadLetter, planted(worker(), (i) => delete i.deadLetterPolicy))).toEqual([
      "subscription jobs-worker: needs deadLetterPolicy.deadLetterTopic",
    ]);
    expect(
      violations(subscriptionsDeadLetter, planted(worker(), (i) => delete i.deadLetterPolicy.maxDeliveryAttempts)),
    ).toEqual(["subscription jobs-worker: needs deadLetterPolicy.maxDeliveryAttempts"]);
  });

  it("exempts only a labelled dead-letter handler that keeps its messages", () => {
    expect(violations(subscriptionsDeadLetter, handler())).toEqual([]);
    expect(violations(subscriptionsDeadLetter, planted(handler(), (i) => delete i.labels))).toHaveLength(1);
    expect(
      violations(subscriptionsDeadLetter, planted(handler(), (i) => (i.messageRetentionDuration = "86400s"))),
    ).toHaveLength(1);
    expect(violations(subscriptionsDeadLetter, planted(handler(), (i) => delete i.expirationPolicy))).toHaveLength(1);
  });
});

describe("no-primitive-roles", () => {
  it.each(["roles/owner", "roles/editor", "roles/viewer"])("catches %s on a member, a binding or a policy", (role) => {
    const member = dev().all("gcp:projects/iAMMember:IAMMember")[0] as DeclaredResource;
    expect(violations(noPrimitiveRoles, planted(member, (i) => (i.role = role)))).toEqual([
      `gcp:projects/iAMMember:IAMMember ${member.name}: grants primitive role ${role}`,
    ]);
    const binding: DeclaredResource = {
      type: "gcp:projects/iAMBinding:IAMBinding",
      name: "planted",
      inputs: { project: "p", role, members: ["user:someone@example.com"] },
    };
    expect(violations(noPrimitiveRoles, binding)).toHaveLength(1);
    const policy: DeclaredResource = {
      type: "gcp:projects/iAMPolicy:IAMPolicy",
      name: "planted",
      inputs: { project: "p", policyData: JSON.stringify({ bindings: [{ role, members: ["group:ops@example.com"] }] }) },
    };
    expect(violations(noPrimitiveRoles, policy)).toHaveLength(1);
  });

  it("leaves predefined roles alone", () => {
    const member = dev().all("gcp:projects/iAMMember:IAMMember")[0] as DeclaredResource;
    expect(violations(noPrimitiveRoles, planted(member, (i) => (i.role = "roles/storage.objectViewer")))).toEqual([]);
  });
});

describe("gpu-pools-tainted-with-drivers", () => {
  const gpu = () => dev().one("gcp:container/nodePool:NodePool", "gpu");

  it("catches a GPU pool without the taint", () => {
    expect(violations(gpuPoolsTaintedWithDrivers, planted(gpu(), (i) => (i.nodeConfig.taints = [])))).toEqual([
      "gpu: GPU nodes need the taint nvidia.com/gpu (NO_SCHEDULE)",
    ]);
    const preferOnly = planted(gpu(), (i) => (i.nodeConfig.taints[0].effect = "PREFER_NO_SCHEDULE"));
    expect(violations(gpuPoolsTaintedWithDrivers, preferOnly)).toHaveLength(1);
  });

  it("catches a GPU pool that does not install drivers", () => {
    const disabled = planted(gpu(), (i) => {
      i.nodeConfig.guestAccelerators[0].gpuDriverInstallationConfig.gpuDriverVersion = "INSTALLATION_DISABLED";
    });
    expect(violations(gpuPoolsTaintedWithDrivers, disabled)).toEqual([
      "gpu: nvidia-tesla-t4 needs gpuDriverInstallationConfig.gpuDriverVersion DEFAULT or LATEST",
    ]);
    const unset = planted(gpu(), (i) => delete i.nodeConfig.guestAccelerators[0].gpuDriverInstallationConfig);
    expect(violations(gpuPoolsTaintedWithDrivers, unset)).toHaveLength(1);
  });

  it("also checks GPU pools declared inline on a cluster", () => {
    const cluster = dev().one("gcp:container/cluster:Cluster", "gke");
    const inline = planted(cluster, (i) => {
      i.nodePools = [{ name: "inline-gpu", nodeConfig: { guestAccelerators: [{ type: "nvidia-tesla-t4", count: 1 }] } }];
    });
    expect(violations(gpuPoolsTaintedWithDrivers, inline)).toHaveLength(2);
  });

  it("ignores pools without GPUs", () => {
    expect(violations(gpuPoolsTaintedWithDrivers, dev().one("gcp:container/nodePool:NodePool", "cpu"))).toEqual([]);
  });
});

describe("least-privilege-roles", () => {
  const grant = (name: string) => {
    const all = dev().resources.filter((r) => r.name === name);
    expect(all).toHaveLength(1);
    return all[0] as DeclaredResource;
  };

  it("catches the worker given roles/storage.admin, on the project or on a bucket", () => {
    const onProject = planted(grant("worker-firestore"), (i) => (i.role = "roles/storage.admin"));
    expect(violations(leastPrivilegeRoles, onProject)).toEqual([
      "worker-firestore: worker may not hold project roles/storage.admin (infra/policies.ts serviceAccountAllowList)",
    ]);
    const onBucket = planted(grant("worker-results"), (i) => (i.role = "roles/storage.admin"));
    expect(violations(leastPrivilegeRoles, onBucket)).toEqual([
      "worker-results: worker may not hold bucket results roles/storage.admin (infra/policies.ts serviceAccountAllowList)",
    ]);
  });

  it("catches an allowed role on the wrong resource", () => {
    // The worker may read uploads, but not read the models bucket.
    const models = planted(grant("worker-uploads"), (i) => (i.bucket = i.bucket.replace(/uploads$/, "models")));
    expect(violations(leastPrivilegeRoles, models)).toHaveLength(1);
  });

  it("catches an account the allow-list does not know, and a conditional role without its condition", () => {
    const stranger = planted(grant("worker-firestore"), (i) => (i.member = i.member.replace("worker-dev@", "debug-dev@")));
    expect(violations(leastPrivilegeRoles, stranger)).toHaveLength(1);
    const unconditional = planted(grant("builder-function-sources"), (i) => delete i.condition);
    expect(violations(leastPrivilegeRoles, unconditional)).toEqual([
      "builder-function-sources: builder may not hold project roles/storage.objectAdmin (infra/policies.ts serviceAccountAllowList)",
    ]);
  });

  it("lists every account the program creates, and each allowed grant is one the program makes", () => {
    const accounts = dev().all("gcp:serviceaccount/account:Account").map((a) => String(a.inputs.accountId).replace(/-dev$/, ""));
    expect(Object.keys(serviceAccountAllowList).sort()).toEqual(accounts.sort());
    // An allow-list wider than the program would hide a grant added later: every entry is used.
    const used = new Set(
      dev().resources.flatMap((r) =>
        stackAccountGrants(r.type, r.inputs).flatMap((g) =>
          "unknown" in g ? [] : [`${g.account}: ${g.grant}${g.conditional ? " (conditional)" : ""}`],
        ),
      ),
    );
    const listed = Object.entries(serviceAccountAllowList).flatMap(([account, grants]) => grants.map((g) => `${account}: ${g}`));
    expect(listed.filter((entry) => !used.has(entry))).toEqual([]);
  });
});

describe("workload-identity-everywhere", () => {
  const cpu = () => dev().one("gcp:container/nodePool:NodePool", "cpu");

  it("catches the CPU pool without GKE_METADATA", () => {
    expect(violations(workloadIdentityEverywhere, planted(cpu(), (i) => delete i.nodeConfig.workloadMetadataConfig))).toEqual([
      "cpu: needs nodeConfig.workloadMetadataConfig.mode GKE_METADATA",
    ]);
    expect(
      violations(workloadIdentityEverywhere, planted(cpu(), (i) => (i.nodeConfig.workloadMetadataConfig.mode = "GCE_METADATA"))),
    ).toHaveLength(1);
  });

  it("catches a cluster without a workload pool", () => {
    const cluster = dev().one("gcp:container/cluster:Cluster", "gke");
    expect(violations(workloadIdentityEverywhere, planted(cluster, (i) => delete i.workloadIdentityConfig))).toEqual([
      "gke: needs workloadIdentityConfig.workloadPool",
    ]);
  });
});

describe("private-cluster", () => {
  const cluster = () => runs.prod?.one("gcp:container/cluster:Cluster", "gke") as DeclaredResource;

  it("catches enablePrivateNodes: false on the cluster or a pool", () => {
    expect(violations(privateCluster, planted(cluster(), (i) => (i.privateClusterConfig.enablePrivateNodes = false)))).toEqual([
      "gke: privateClusterConfig.enablePrivateNodes must be true",
    ]);
    const pool = planted(dev().one("gcp:container/nodePool:NodePool", "cpu"), (i) => (i.networkConfig = { enablePrivateNodes: false }));
    expect(violations(privateCluster, pool)).toHaveLength(1);
  });

  it("catches an endpoint authorized for 0.0.0.0/0", () => {
    const open = planted(cluster(), (i) => i.masterAuthorizedNetworksConfig.cidrBlocks.push({ cidrBlock: "0.0.0.0/0" }));
    expect(violations(privateCluster, open)).toEqual(["gke: masterAuthorizedNetworksConfig must not authorize 0.0.0.0/0"]);
  });
});

describe("pods-run-unprivileged", () => {
  const deployment = (name: string) => dev().one("kubernetes:apps/v1:Deployment", name);

  it.each(["worker", "triton"])("catches the %s running as root or keeping capabilities", (name) => {
    expect(violations(podsRunUnprivileged, planted(deployment(name), (i) => delete i.spec.template.spec.securityContext))).toEqual([
      `${name}: the pod needs securityContext.runAsNonRoot true`,
    ]);
    const capable = planted(deployment(name), (i) => (i.spec.template.spec.containers[0].securityContext.capabilities = { add: ["SYS_ADMIN"] }));
    expect(violations(podsRunUnprivileged, capable)).toEqual([`${name}/${name}: must drop ALL capabilities`]);
    const escalating = planted(deployment(name), (i) => delete i.spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation);
    expect(violations(podsRunUnprivileged, escalating)).toHaveLength(1);
  });
});

describe("images-by-digest", () => {
  it.each(["worker", "triton"])("catches the %s deployed by tag", (name) => {
    const tagged = planted(dev().one("kubernetes:apps/v1:Deployment", name), (i) => {
      i.spec.template.spec.containers[0].image = i.spec.template.spec.containers[0].image.replace(/@sha256:.*/, ":latest");
    });
    expect(violations(imagesByDigest, tagged)).toHaveLength(1);
  });
});
