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

export const policies: readonly ResourceValidationPolicy[] = [
  noPublicBucket,
  subscriptionsDeadLetter,
  noPrimitiveRoles,
  gpuPoolsTaintedWithDrivers,
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
