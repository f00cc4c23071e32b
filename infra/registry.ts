/**
 * The Artifact Registry repository for the worker image and the Triton image (NGC release plus
 * onnxruntime-gpu). In-region, so that nodes pull over Private Google Access, not the NAT.
 */
import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";

import { stackName, type InfraConfig } from "./config.js";

export class Registry extends pulumi.ComponentResource {
  readonly repository: gcp.artifactregistry.Repository;
  /** `<region>-docker.pkg.dev/<project>/<repo>`: prefix of every image name. */
  readonly url: pulumi.Output<string>;

  constructor(name: string, args: { config: InfraConfig }, opts?: pulumi.ComponentResourceOptions) {
    super("image-edit:infra:Registry", name, {}, opts);
    const { config } = args;
    this.repository = new gcp.artifactregistry.Repository(
      "images",
      {
        project: config.project,
        location: config.region,
        repositoryId: stackName(config, "images"),
        format: "DOCKER",
        // CI pushes an image per commit; without cleanup the repository grows without bound.
        cleanupPolicyDryRun: false,
        cleanupPolicies: [
          { id: "keep-recent", action: "KEEP", mostRecentVersions: { keepCount: 20 } },
          { id: "delete-old", action: "DELETE", condition: { tagState: "ANY", olderThan: `${30 * 86_400}s` } },
        ],
      },
      { parent: this },
    );
    this.url = pulumi.interpolate`${config.region}-docker.pkg.dev/${config.project}/${this.repository.repositoryId}`;
    this.registerOutputs({ url: this.url });
  }
}
