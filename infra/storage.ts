/**
 * The buckets: uploads (user input, short-lived), results (expiring outputs), the Triton model
 * repository, and the source archives of the image builds. All private: uniform bucket-level access (no per-object ACLs to audit) and
 * public access prevention enforced, so that no IAM slip can expose a user's photo.
 */
import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";

import type { InfraConfig } from "./config.js";

/** The folder of the models bucket Triton reads (`--model-repository=gs://<bucket>/<this>`). */
export const modelRepositoryPrefix = "model_repository";

export class Storage extends pulumi.ComponentResource {
  readonly uploads: gcp.storage.Bucket;
  readonly results: gcp.storage.Bucket;
  readonly models: gcp.storage.Bucket;
  readonly buildSource: gcp.storage.Bucket;

  constructor(name: string, args: { config: InfraConfig }, opts?: pulumi.ComponentResourceOptions) {
    super("image-edit:infra:Storage", name, {}, opts);
    const { config } = args;
    const common = {
      project: config.project,
      // Same region as the functions and the cluster: no egress charges, and Eventarc's storage
      // trigger must be in the bucket's region.
      location: config.region.toUpperCase(),
      uniformBucketLevelAccess: true,
      publicAccessPrevention: "enforced",
      forceDestroy: !config.protectData,
    } satisfies Partial<gcp.storage.BucketArgs>;
    const origins = [...config.corsOrigins];

    this.uploads = new gcp.storage.Bucket(
      "uploads",
      {
        ...common,
        name: `${config.project}-${config.stack}-uploads`,
        // Browsers PUT straight to a signed URL (POST starts a resumable upload); no origins, no CORS.
        cors: origins.length
          ? [
              {
                origins,
                methods: ["PUT", "POST", "OPTIONS"],
                // Browsers send every header the signed URL covers: the length range and the trace context.
                responseHeaders: ["Content-Type", "Content-Length", "x-goog-resumable", "x-goog-content-length-range", "x-goog-meta-traceparent", "x-goog-meta-tracestate"],
                maxAgeSeconds: 3600,
              },
            ]
          : [],
        // An upload is only the input of one job; once the job is done it is dead weight.
        lifecycleRules: [{ action: { type: "Delete" }, condition: { age: config.uploadsLifecycleDays } }],
        // Uploads are deleted on purpose; soft delete would only bill for them for another week.
        softDeletePolicy: { retentionDurationSeconds: 0 },
      },
      { parent: this },
    );

    this.results = new gcp.storage.Bucket(
      "results",
      {
        ...common,
        name: `${config.project}-${config.stack}-results`,
        cors: origins.length
          ? [{ origins, methods: ["GET", "HEAD"], responseHeaders: ["Content-Type"], maxAgeSeconds: 3600 }]
          : [],
        // Results expire, as the API tells users; the job's events keep the history.
        lifecycleRules: [{ action: { type: "Delete" }, condition: { age: config.resultsLifecycleDays } }],
        softDeletePolicy: { retentionDurationSeconds: 0 },
      },
      { parent: this },
    );

    this.models = new gcp.storage.Bucket(
      "models",
      {
        ...common,
        name: `${config.project}-${config.stack}-models`,
        // An overwritten model file can be restored; old generations go after 30 days.
        versioning: { enabled: true },
        lifecycleRules: [
          { action: { type: "Delete" }, condition: { daysSinceNoncurrentTime: 30, withState: "ARCHIVED" } },
        ],
      },
      { parent: this },
    );

    // `gcloud builds submit` stages the worker's source here (not in the project-wide
    // <project>_cloudbuild bucket), so the build account reads this bucket and nothing else.
    this.buildSource = new gcp.storage.Bucket(
      "build-source",
      {
        ...common,
        name: `${config.project}-${config.stack}-build-source`,
        // A build reads its archive once, within minutes.
        forceDestroy: true,
        lifecycleRules: [{ action: { type: "Delete" }, condition: { age: 7 } }],
        softDeletePolicy: { retentionDurationSeconds: 0 },
      },
      { parent: this },
    );
    this.registerOutputs({});
  }
}
