/**
 * The Google APIs the stack uses. Enabling them here makes a fresh project work with one
 * `pulumi up`; `disableOnDestroy: false` because other things in the project may use them too.
 */
import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";

const apis = [
  "artifactregistry.googleapis.com",
  "cloudbuild.googleapis.com", // Cloud Functions (2nd gen) builds the source with Cloud Build.
  "cloudfunctions.googleapis.com",
  "cloudquotas.googleapis.com", // The GPU quota check before the cluster (infra/preflight.ts).
  "cloudresourcemanager.googleapis.com", // Project IAM grants.
  "cloudscheduler.googleapis.com", // The sweeper's schedule.
  "compute.googleapis.com",
  "container.googleapis.com",
  // Image streaming (gcfsConfig on the GPU pool): without it the pool is created but streaming
  // stays off, and Triton's ~15 GB image takes minutes to pull on every fresh GPU node.
  "containerfilesystem.googleapis.com",
  "eventarc.googleapis.com",
  "firebaserules.googleapis.com",
  "firestore.googleapis.com",
  "iam.googleapis.com",
  "identitytoolkit.googleapis.com", // Firebase Auth / Identity Platform: the app's sign-in (infra/signIn.ts).
  "iamcredentials.googleapis.com", // signBlob, for signed URLs without a key file.
  "monitoring.googleapis.com", // Managed Prometheus and the Pub/Sub metrics KEDA reads.
  "pubsub.googleapis.com",
  "run.googleapis.com", // 2nd-gen functions run as Cloud Run services.
  "storage.googleapis.com",
] as const;

export type Api = (typeof apis)[number];

export class ProjectServices extends pulumi.ComponentResource {
  /** Depend on this to make sure the APIs are on before creating their resources. */
  readonly services: gcp.projects.Service[];
  /** One API's enablement, to order a resource or a read after just that API. */
  readonly byApi: Record<Api, gcp.projects.Service>;

  constructor(name: string, args: { project: string }, opts?: pulumi.ComponentResourceOptions) {
    super("image-edit:infra:ProjectServices", name, {}, opts);
    this.services = apis.map(
      (api) =>
        new gcp.projects.Service(
          api.split(".")[0] as string,
          { project: args.project, service: api, disableOnDestroy: false, disableDependentServices: false },
          { parent: this },
        ),
    );
    this.byApi = Object.fromEntries(apis.map((api, i) => [api, this.services[i]])) as Record<Api, gcp.projects.Service>;
    this.registerOutputs({});
  }
}
