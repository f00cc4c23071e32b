/**
 * What `pulumi up` cannot do for the operator, checked before it spends anything: a billing
 * account on the project, the project added to Firebase, and GPU quota for the T4 pool. Each
 * failure is one sentence that says what to do, instead of a provider error twenty minutes in.
 */
import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";

import type { InfraConfig } from "./config.js";

/**
 * Billing and Firebase, read at the start of every preview and update (one project lookup).
 * Firebase marks a project it was added to with the label `firebase: enabled`.
 */
export async function checkProject(config: InfraConfig): Promise<void> {
  const project = await gcp.organizations.getProject({ projectId: config.project });
  const problems = projectProblems(config.project, project);
  if (problems.length > 0) throw new Error(problems.join("\n"));
}

export function projectProblems(
  projectId: string,
  project: { billingAccount?: string; labels?: Record<string, string> },
): string[] {
  const problems: string[] = [];
  if (!project.billingAccount) {
    problems.push(
      `project ${projectId} has no billing account: link one with ` +
        `\`gcloud billing projects link ${projectId} --billing-account=<ACCOUNT_ID>\` ` +
        `(\`gcloud billing accounts list\` shows yours), then run \`pulumi up\` again`,
    );
  }
  if (project.labels?.firebase !== "enabled") {
    problems.push(
      `project ${projectId} is not added to Firebase (the API verifies Firebase ID tokens and the security rules are a Firebase release): ` +
        `add it at https://console.firebase.google.com ("Add project", pick ${projectId}) ` +
        `or with \`firebase projects:addfirebase ${projectId}\`, then run \`pulumi up\` again`,
    );
  }
  return problems;
}

/**
 * The Cloud Quotas ids that bound the GPU pool: the accelerator's per-region quota (its Spot
 * variant for Spot nodes) and the project-wide GPU quota, which new projects start at 0.
 */
export function gpuQuotaIds(config: Pick<InfraConfig, "gpuAcceleratorType" | "gpuSpot">): string[] {
  const model = config.gpuAcceleratorType.replace(/^nvidia-(tesla-)?/, "").toUpperCase();
  return [`${config.gpuSpot ? "PREEMPTIBLE-" : ""}NVIDIA-${model}-GPUS-per-project-region`, "GPUS-ALL-REGIONS-per-project"];
}

interface QuotaInfo {
  quotaId: string;
  dimensionsInfos: ReadonlyArray<{ dimensions: Record<string, string>; details: ReadonlyArray<{ value: string }> }>;
}

/** The quota in force for `region` (a region-specific entry wins over the default one). */
export function quotaValue(info: QuotaInfo, region: string): number {
  const specific = info.dimensionsInfos.find((d) => d.dimensions.region === region);
  const general = info.dimensionsInfos.find((d) => d.dimensions.region === undefined);
  const value = (specific ?? general)?.details[0]?.value;
  return value === undefined ? 0 : Number(value);
}

export function gpuQuotaProblem(
  config: Pick<InfraConfig, "project" | "region" | "gpuMaxNodes" | "gpuAcceleratorType">,
  infos: readonly QuotaInfo[],
): string | undefined {
  const short = infos.filter((info) => quotaValue(info, config.region) < config.gpuMaxNodes);
  if (short.length === 0) return undefined;
  const list = short.map((info) => `${info.quotaId} = ${quotaValue(info, config.region)}`).join(", ");
  return (
    `project ${config.project} lacks GPU quota for gpuMaxNodes=${config.gpuMaxNodes} ${config.gpuAcceleratorType} in ${config.region} ` +
    `(${list}): request at least ${config.gpuMaxNodes} at https://console.cloud.google.com/iam-admin/quotas?project=${config.project} ` +
    `(filter on the quota ids above; approval takes minutes to days), or lower gpuMaxNodes, then run \`pulumi up\` again`
  );
}

/**
 * The GPU pool's ceiling once the quota is known to allow it. The read waits for the Cloud Quotas
 * and Compute APIs this stack enables, so on a fresh project it runs early in `up` (the preview
 * cannot read it yet); a short quota fails the update before the pool is created.
 */
export function checkedGpuMaxNodes(config: InfraConfig, apis: pulumi.Resource[]): pulumi.Output<number> {
  const infos = gpuQuotaIds(config).map((quotaId) =>
    gcp.cloudquota.getSQuotaInfoOutput(
      { parent: `projects/${config.project}`, service: "compute.googleapis.com", quotaId },
      { dependsOn: apis },
    ),
  );
  return pulumi.all(infos).apply((results) => {
    const problem = gpuQuotaProblem(
      config,
      results.map((r) => ({ quotaId: r.quotaId, dimensionsInfos: r.dimensionsInfos })),
    );
    if (problem) throw new Error(problem);
    return config.gpuMaxNodes;
  });
}
