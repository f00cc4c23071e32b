/**
 * Guardrails for every stack, as @pulumi/policy resource policies. They run in
 * `pulumi preview --policy-pack infra/policy-pack` (registered by infra/policyPack.ts) and in the
 * unit tests, which feed them the resources the program declares under mocks.
 *
 * They match on the resource's type token and read its inputs as plain data, so they check the
 * program's intent before anything reaches Google Cloud.
 */
import type { ReportViolation, ResourceValidationArgs, ResourceValidationPolicy } from "@pulumi/policy";

type Props = Record<string, unknown>;

const publicMembers = new Set(["allUsers", "allAuthenticatedUsers"]);
const primitiveRoles = new Set(["roles/owner", "roles/editor", "roles/viewer"]);
const iamResource = /(IAM|Iam)(Member|Binding|Policy)$/;
const aclResource = /(ACL|AccessControl)$/;

/** No bucket can be public: prevention enforced, uniform access, and no public IAM or ACLs. */
export const noPublicBucket: ResourceValidationPolicy = {
  name: "no-public-bucket",
  description:
    "Buckets enforce public access prevention and uniform bucket-level access; no storage IAM grant or ACL names allUsers or allAuthenticatedUsers.",
  enforcementLevel: "mandatory",
  validateResource: (args: ResourceValidationArgs, report: ReportViolation) => {
    if (!args.type.startsWith("gcp:storage/")) return;
    const props = args.props as Props;
    if (args.type === "gcp:storage/bucket:Bucket") {
      if (props.publicAccessPrevention !== "enforced") {
        report(`bucket ${args.name}: publicAccessPrevention must be "enforced"`);
      }
      if (props.uniformBucketLevelAccess !== true) {
        report(`bucket ${args.name}: uniformBucketLevelAccess must be true (ACLs can make objects public)`);
      }
      return;
    }
    const members = iamResource.test(args.type)
      ? iamMembers(props)
      : aclResource.test(args.type)
        ? aclEntities(props)
        : [];
    for (const member of members) {
      if (publicMembers.has(member)) report(`${args.type} ${args.name}: grants storage access to ${member}`);
    }
  },
};

/**
 * Every subscription dead-letters: a job that keeps failing must leave the queue with a reason,
 * not retry forever. The one exception is a subscription labelled as a dead-letter handler
 * (infra/messaging.ts): dead-lettering the dead letters would only move them somewhere less
 * visible. The exemption is earned, not free: such a subscription must keep its messages for the
 * maximum seven days and never expire, so nothing is lost before an operator looks.
 */
export const subscriptionsDeadLetter: ResourceValidationPolicy = {
  name: "subscriptions-dead-letter",
  description:
    "Every Pub/Sub subscription has a dead-letter topic and maxDeliveryAttempts, except labelled dead-letter handlers, which must retain messages for 7 days and never expire.",
  enforcementLevel: "mandatory",
  validateResource: (args: ResourceValidationArgs, report: ReportViolation) => {
    if (args.type !== "gcp:pubsub/subscription:Subscription") return;
    const props = args.props as Props;
    const labels = (props.labels ?? {}) as Record<string, string>;
    if (labels["pubsub-role"] === "dead-letter-handler") {
      const expiration = props.expirationPolicy as Props | undefined;
      if (props.messageRetentionDuration !== "604800s" || expiration?.ttl !== "") {
        report(
          `subscription ${args.name}: a dead-letter handler must keep messages 604800s and never expire (expirationPolicy.ttl "")`,
        );
      }
      return;
    }
    const policy = props.deadLetterPolicy as Props | undefined;
    if (!policy?.deadLetterTopic) {
      report(`subscription ${args.name}: needs deadLetterPolicy.deadLetterTopic`);
    } else if (typeof policy.maxDeliveryAttempts !== "number") {
      report(`subscription ${args.name}: needs deadLetterPolicy.maxDeliveryAttempts`);
    }
  },
};

/** Basic roles grant thousands of permissions; every grant here names a predefined role. */
export const noPrimitiveRoles: ResourceValidationPolicy = {
  name: "no-primitive-roles",
  description: "No IAM grant uses roles/owner, roles/editor or roles/viewer.",
  enforcementLevel: "mandatory",
  validateResource: (args: ResourceValidationArgs, report: ReportViolation) => {
    if (!iamResource.test(args.type)) return;
    for (const role of iamRoles(args.props as Props)) {
      if (primitiveRoles.has(role)) report(`${args.type} ${args.name}: grants primitive role ${role}`);
    }
  },
};

/**
 * A GPU node without the taint attracts ordinary pods and never scales to zero; one without
 * managed drivers cannot run CUDA at all.
 */
export const gpuPoolsTaintedWithDrivers: ResourceValidationPolicy = {
  name: "gpu-pools-tainted-with-drivers",
  description:
    "Every node pool with GPUs carries the nvidia.com/gpu NoSchedule taint and has GKE install the GPU driver.",
  enforcementLevel: "mandatory",
  validateResource: (args: ResourceValidationArgs, report: ReportViolation) => {
    const props = args.props as Props;
    let nodeConfigs: Props[] = [];
    if (args.type === "gcp:container/nodePool:NodePool") {
      nodeConfigs = [props.nodeConfig as Props | undefined].filter((c): c is Props => !!c);
    } else if (args.type === "gcp:container/cluster:Cluster") {
      // A cluster can declare pools inline, and its nodeConfig is the default pool's.
      const inline = ((props.nodePools ?? []) as Props[]).map((pool) => pool.nodeConfig as Props | undefined);
      nodeConfigs = [props.nodeConfig as Props | undefined, ...inline].filter((c): c is Props => !!c);
    } else {
      return;
    }
    for (const nodeConfig of nodeConfigs) {
      const accelerators = (nodeConfig.guestAccelerators ?? []) as Props[];
      if (accelerators.length === 0) continue;
      const taints = (nodeConfig.taints ?? []) as Props[];
      const tainted = taints.some((t) => t.key === "nvidia.com/gpu" && t.effect === "NO_SCHEDULE");
      if (!tainted) report(`${args.name}: GPU nodes need the taint nvidia.com/gpu (NO_SCHEDULE)`);
      for (const accelerator of accelerators) {
        const driver = (accelerator.gpuDriverInstallationConfig as Props | undefined)?.gpuDriverVersion;
        if (driver !== "DEFAULT" && driver !== "LATEST") {
          report(`${args.name}: ${String(accelerator.type)} needs gpuDriverInstallationConfig.gpuDriverVersion DEFAULT or LATEST`);
        }
      }
    }
  },
};

/**
 * Every role each of the stack's service accounts may hold, and on what: `<scope> <role>`, where
 * the scope is `project`, or a kind and the resource's name without the stack
 * (`bucket uploads`, `topic edit-jobs`, `service upload-finalized`, ...). A grant that is not
 * listed here is a violation: widening an account's access is a reviewed change to this list.
 * "(conditional)" entries must carry an IAM condition.
 */
export const serviceAccountAllowList: Readonly<Record<string, readonly string[]>> = {
  api: [
    "project roles/datastore.user",
    "topic edit-jobs roles/pubsub.publisher",
    "topic edit-jobs-batch roles/pubsub.publisher",
    "bucket uploads roles/storage.objectAdmin",
    "bucket results roles/storage.objectViewer",
    "serviceAccount api roles/iam.serviceAccountTokenCreator",
  ],
  "upload-trigger": [
    "project roles/datastore.user",
    "project roles/eventarc.eventReceiver",
    "topic edit-jobs roles/pubsub.publisher",
    "topic edit-jobs-batch roles/pubsub.publisher",
    "bucket uploads roles/storage.objectUser",
    "service upload-finalized roles/run.invoker",
    "service dead-letter roles/run.invoker",
    "service sweep-jobs roles/run.invoker",
  ],
  webhooks: [
    "project roles/datastore.user",
    "project roles/eventarc.eventReceiver",
    "bucket results roles/storage.objectViewer",
    "serviceAccount webhooks roles/iam.serviceAccountTokenCreator",
    "service webhook-events roles/run.invoker",
  ],
  worker: [
    "project roles/datastore.user",
    "subscription edit-jobs-worker roles/pubsub.subscriber",
    "subscription edit-jobs-batch-worker roles/pubsub.subscriber",
    "bucket uploads roles/storage.objectViewer",
    "bucket results roles/storage.objectUser",
  ],
  triton: ["bucket models roles/storage.objectViewer"],
  keda: ["project roles/monitoring.viewer"],
  "gke-nodes": ["project roles/container.defaultNodeServiceAccount", "repository images roles/artifactregistry.reader"],
  builder: [
    "project roles/logging.logWriter",
    "project roles/storage.objectAdmin (conditional)",
    "repository images roles/artifactregistry.writer",
    "bucket build-source roles/storage.objectViewer",
    "bucket functions-source roles/storage.objectViewer",
  ],
};

/** Where an IAM resource type grants, and which input names the resource. */
const grantScopes: Record<string, { kind: string; nameOf: (props: Props) => unknown }> = {
  "gcp:projects/iAMMember:IAMMember": { kind: "project", nameOf: () => "" },
  "gcp:projects/iAMBinding:IAMBinding": { kind: "project", nameOf: () => "" },
  "gcp:storage/bucketIAMMember:BucketIAMMember": { kind: "bucket", nameOf: (p) => p.bucket },
  "gcp:storage/bucketIAMBinding:BucketIAMBinding": { kind: "bucket", nameOf: (p) => p.bucket },
  "gcp:pubsub/topicIAMMember:TopicIAMMember": { kind: "topic", nameOf: (p) => p.topic },
  "gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember": { kind: "subscription", nameOf: (p) => p.subscription },
  "gcp:serviceaccount/iAMMember:IAMMember": { kind: "serviceAccount", nameOf: (p) => p.serviceAccountId },
  "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember": { kind: "repository", nameOf: (p) => p.repository },
  "gcp:cloudrunv2/serviceIamMember:ServiceIamMember": { kind: "service", nameOf: (p) => p.name },
};

/** The stack's own accounts are `<name>-<stack>@<project>.iam.gserviceaccount.com`. */
function stackAccount(member: string): { account: string; stack: string } | undefined {
  const match = /^serviceAccount:([a-z0-9-]+)@[a-z0-9-]+\.iam\.gserviceaccount\.com$/.exec(member);
  const id = match?.[1];
  // Google's service agents (service-<project number>@...) are granted by Google's docs, not here.
  if (id === undefined || /^service-\d+$/.test(id)) return undefined;
  const account = Object.keys(serviceAccountAllowList)
    .sort((a, b) => b.length - a.length)
    .find((name) => id.startsWith(`${name}-`));
  return account ? { account, stack: id.slice(account.length + 1) } : { account: id, stack: "" };
}

/** A resource name without the project and stack: `p-dev-uploads` -> `uploads`, `edit-jobs-dev` -> `edit-jobs`. */
function baseName(kind: string, name: string, stack: string): string {
  const last = name.split("/").pop() ?? name;
  if (kind === "bucket") {
    const at = last.lastIndexOf(`-${stack}-`);
    return at < 0 ? last : last.slice(at + stack.length + 2);
  }
  if (kind === "serviceAccount") return last.replace(/@.*$/, "").replace(new RegExp(`-${stack}$`), "");
  return last.replace(new RegExp(`-${stack}$`), "");
}

/**
 * The grants an IAM resource gives the stack's own accounts, as allow-list entries
 * (`<scope> <role>`); `unknown` when the member is one of ours but the resource type or the
 * account is not one the allow-list speaks of.
 */
export function stackAccountGrants(
  type: string,
  props: Record<string, unknown>,
): Array<{ account: string; grant: string; conditional: boolean } | { unknown: string }> {
  if (!iamResource.test(type)) return [];
  const found: Array<{ account: string; grant: string; conditional: boolean } | { unknown: string }> = [];
  for (const member of iamMembers(props)) {
    const holder = stackAccount(member);
    if (!holder) continue; // Google's service agents, Kubernetes identities, allUsers.
    const scope = grantScopes[type];
    if (!serviceAccountAllowList[holder.account] || !scope) {
      found.push({ unknown: member });
      continue;
    }
    const name = scope.nameOf(props);
    if (scope.kind !== "project" && typeof name !== "string") continue; // unknown at preview
    const where = scope.kind === "project" ? "project" : `${scope.kind} ${baseName(scope.kind, name as string, holder.stack)}`;
    for (const role of iamRoles(props)) {
      found.push({ account: holder.account, grant: `${where} ${role}`, conditional: !!props.condition });
    }
  }
  return found;
}

export const leastPrivilegeRoles: ResourceValidationPolicy = {
  name: "least-privilege-roles",
  description: "Every IAM grant to one of the stack's service accounts is on serviceAccountAllowList.",
  enforcementLevel: "mandatory",
  validateResource: (args: ResourceValidationArgs, report: ReportViolation) => {
    for (const found of stackAccountGrants(args.type, args.props as Props)) {
      if ("unknown" in found) {
        report(`${args.type} ${args.name}: ${found.unknown} is not an account on the allow-list, or not a grant it knows`);
        continue;
      }
      const allowed = serviceAccountAllowList[found.account] ?? [];
      if (allowed.includes(found.grant)) continue;
      if (found.conditional && allowed.includes(`${found.grant} (conditional)`)) continue;
      report(`${args.name}: ${found.account} may not hold ${found.grant} (infra/policies.ts serviceAccountAllowList)`);
    }
  },
};

/** Node pools' (and inline pools') node configs, for the pool policies. */
function nodeConfigsOf(args: ResourceValidationArgs): Props[] | undefined {
  const props = args.props as Props;
  if (args.type === "gcp:container/nodePool:NodePool") {
    return [props.nodeConfig as Props | undefined].filter((c): c is Props => !!c);
  }
  if (args.type === "gcp:container/cluster:Cluster") {
    const inline = ((props.nodePools ?? []) as Props[]).map((pool) => pool.nodeConfig as Props | undefined);
    return [...inline].filter((c): c is Props => !!c);
  }
  return undefined;
}

/**
 * Without the GKE metadata server a pod reads the node's own credentials (its service account),
 * and Workload Identity's per-workload accounts mean nothing.
 */
export const workloadIdentityEverywhere: ResourceValidationPolicy = {
  name: "workload-identity-everywhere",
  description: "The cluster has a workload pool, and every node pool serves the GKE metadata server (GKE_METADATA).",
  enforcementLevel: "mandatory",
  validateResource: (args: ResourceValidationArgs, report: ReportViolation) => {
    const configs = nodeConfigsOf(args);
    if (!configs) return;
    const props = args.props as Props;
    if (args.type === "gcp:container/cluster:Cluster" && !(props.workloadIdentityConfig as Props | undefined)?.workloadPool) {
      report(`${args.name}: needs workloadIdentityConfig.workloadPool`);
    }
    if (args.type === "gcp:container/nodePool:NodePool" && configs.length === 0) {
      report(`${args.name}: needs nodeConfig.workloadMetadataConfig.mode GKE_METADATA`);
    }
    for (const nodeConfig of configs) {
      if ((nodeConfig.workloadMetadataConfig as Props | undefined)?.mode !== "GKE_METADATA") {
        report(`${args.name}: needs nodeConfig.workloadMetadataConfig.mode GKE_METADATA`);
      }
    }
  },
};

/** Nodes without public addresses, and a control-plane endpoint that is not open to the world. */
export const privateCluster: ResourceValidationPolicy = {
  name: "private-cluster",
  description: "Clusters have private nodes, and their authorized networks (when set) do not include 0.0.0.0/0.",
  enforcementLevel: "mandatory",
  validateResource: (args: ResourceValidationArgs, report: ReportViolation) => {
    const props = args.props as Props;
    if (args.type === "gcp:container/nodePool:NodePool") {
      if ((props.networkConfig as Props | undefined)?.enablePrivateNodes === false) {
        report(`${args.name}: networkConfig.enablePrivateNodes must not be false`);
      }
      return;
    }
    if (args.type !== "gcp:container/cluster:Cluster") return;
    if ((props.privateClusterConfig as Props | undefined)?.enablePrivateNodes !== true) {
      report(`${args.name}: privateClusterConfig.enablePrivateNodes must be true`);
    }
    const blocks = ((props.masterAuthorizedNetworksConfig as Props | undefined)?.cidrBlocks ?? []) as Props[];
    if (blocks.some((block) => block.cidrBlock === "0.0.0.0/0")) {
      report(`${args.name}: masterAuthorizedNetworksConfig must not authorize 0.0.0.0/0`);
    }
  },
};

/** A container escape from a root, capable container is a node compromise. */
export const podsRunUnprivileged: ResourceValidationPolicy = {
  name: "pods-run-unprivileged",
  description:
    "Deployments run as non-root, and every container drops ALL capabilities, forbids privilege escalation and is not privileged.",
  enforcementLevel: "mandatory",
  validateResource: (args: ResourceValidationArgs, report: ReportViolation) => {
    if (args.type !== "kubernetes:apps/v1:Deployment") return;
    const pod = (((args.props as Props).spec as Props | undefined)?.template as Props | undefined)?.spec as Props | undefined;
    if (!pod) return;
    if ((pod.securityContext as Props | undefined)?.runAsNonRoot !== true) {
      report(`${args.name}: the pod needs securityContext.runAsNonRoot true`);
    }
    for (const container of (pod.containers ?? []) as Props[]) {
      const context = (container.securityContext ?? {}) as Props;
      const drop = ((context.capabilities as Props | undefined)?.drop ?? []) as string[];
      if (context.allowPrivilegeEscalation !== false) report(`${args.name}/${String(container.name)}: allowPrivilegeEscalation must be false`);
      if (!drop.includes("ALL")) report(`${args.name}/${String(container.name)}: must drop ALL capabilities`);
      if (context.privileged === true) report(`${args.name}/${String(container.name)}: must not be privileged`);
    }
  },
};

/** A tag can be moved; a digest names the exact image that was built and tested. */
export const imagesByDigest: ResourceValidationPolicy = {
  name: "images-by-digest",
  description: "Every Deployment's containers name their image by digest (@sha256:...).",
  enforcementLevel: "mandatory",
  validateResource: (args: ResourceValidationArgs, report: ReportViolation) => {
    if (args.type !== "kubernetes:apps/v1:Deployment") return;
    const pod = (((args.props as Props).spec as Props | undefined)?.template as Props | undefined)?.spec as Props | undefined;
    for (const container of (pod?.containers ?? []) as Props[]) {
      if (typeof container.image !== "string") continue; // unknown at preview until built
      if (!/@sha256:[0-9a-f]{64}$/.test(container.image)) {
        report(`${args.name}/${String(container.name)}: image ${container.image} is not pinned by digest`);
      }
    }
  },
};

export const policies: readonly ResourceValidationPolicy[] = [
  noPublicBucket,
  subscriptionsDeadLetter,
  noPrimitiveRoles,
  gpuPoolsTaintedWithDrivers,
  leastPrivilegeRoles,
  workloadIdentityEverywhere,
  privateCluster,
  podsRunUnprivileged,
  imagesByDigest,
];

function iamMembers(props: Props): string[] {
  const members: string[] = [];
  if (typeof props.member === "string") members.push(props.member);
  if (Array.isArray(props.members)) members.push(...(props.members as string[]));
  for (const binding of policyBindings(props)) members.push(...(binding.members ?? []));
  return members;
}

function iamRoles(props: Props): string[] {
  const roles: string[] = [];
  if (typeof props.role === "string") roles.push(props.role);
  for (const binding of policyBindings(props)) if (binding.role) roles.push(binding.role);
  return roles;
}

function policyBindings(props: Props): Array<{ role?: string; members?: string[] }> {
  if (typeof props.policyData !== "string") return [];
  try {
    const policy = JSON.parse(props.policyData) as { bindings?: Array<{ role?: string; members?: string[] }> };
    return policy.bindings ?? [];
  } catch {
    return [];
  }
}

function aclEntities(props: Props): string[] {
  const entities: string[] = [];
  if (typeof props.entity === "string") entities.push(props.entity);
  // BucketACL/ObjectACL/DefaultObjectACL: "ROLE:entity" strings.
  for (const key of ["roleEntities", "defaultAcls"]) {
    const list = props[key];
    if (Array.isArray(list)) entities.push(...(list as string[]).map((e) => e.split(":").pop() ?? e));
  }
  if (typeof props.predefinedAcl === "string" && /public/i.test(props.predefinedAcl)) entities.push("allUsers");
  return entities;
}
