/**
 * The Cloud Functions (2nd gen), built by Cloud Build from the repository's `dist/` (run
 * `npm run build` first): `api` (HTTP), `uploadFinalized` (Eventarc, object finalized on the
 * uploads bucket), `deadLetter` (Eventarc, messages on the jobs' dead-letter topic) and
 * `sweepJobs` (HTTP, private, called every minute by Cloud Scheduler; it also retries the webhooks
 * that are due) and `webhookEvents` (Eventarc, a document created under `jobs/{jobId}/events`).
 * The API runs as its own service account; the dead-letter handler and the sweeper share the upload
 * trigger's, which already holds exactly what they need (append to the event log, publish jobs,
 * read and write the webhook outbox); `webhookEvents` runs as its own (infra/identity.ts).
 * The functions have no VPC connector: their egress, webhooks included, goes straight to the
 * internet, and the SSRF guard (adapters/webhooks/webhookGuard.ts) keeps them off the metadata
 * server and private ranges (infra/README.md, egress).
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";

import { stackName, type InfraConfig } from "./config.js";

/** The built entry the functions load (`main` of the uploaded package.json). */
export const functionsEntry = "dist/functions/index.js";

export interface FunctionsArgs {
  config: InfraConfig;
  /** Repository root: holds package.json, package-lock.json and dist/. */
  sourceRoot: string;
  apiServiceAccount: pulumi.Input<string>;
  uploadTriggerServiceAccount: pulumi.Input<string>;
  /** The account `webhookEvents` runs as and Eventarc invokes it with. */
  webhooksServiceAccount: pulumi.Input<string>;
  uploadsBucket: pulumi.Input<string>;
  resultsBucket: pulumi.Input<string>;
  jobsTopic: pulumi.Input<string>;
  jobsBatchTopic: pulumi.Input<string>;
  /** The dead-letter topic's id (`projects/.../topics/...`), whose messages `deadLetter` handles. */
  deadLetterTopic: pulumi.Input<string>;
  /** The account Cloud Build runs the functions' builds as (infra/identity.ts `builder`). */
  builderServiceAccount: pulumi.Input<string>;
  /** The stack's Artifact Registry repository id (`images-<stack>`), where the builds push. */
  imageRepository: pulumi.Input<string>;
}

export class Functions extends pulumi.ComponentResource {
  readonly api: gcp.cloudfunctionsv2.Function;
  readonly uploadFinalized: gcp.cloudfunctionsv2.Function;
  readonly deadLetter: gcp.cloudfunctionsv2.Function;
  readonly sweepJobs: gcp.cloudfunctionsv2.Function;
  readonly sweepSchedule: gcp.cloudscheduler.Job;
  readonly webhookEvents: gcp.cloudfunctionsv2.Function;
  readonly apiUrl: pulumi.Output<string>;

  constructor(name: string, args: FunctionsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("image-edit:infra:Functions", name, {}, opts);
    const { config } = args;
    const project = config.project;

    const sourceBucket = new gcp.storage.Bucket(
      "functions-source",
      {
        project,
        name: `${config.project}-${config.stack}-functions-source`,
        location: config.region.toUpperCase(),
        uniformBucketLevelAccess: true,
        publicAccessPrevention: "enforced",
        forceDestroy: true,
        // Only the latest archives matter once deployed.
        lifecycleRules: [{ action: { type: "Delete" }, condition: { age: 30 } }],
      },
      { parent: this },
    );
    // The build account reads the archive from here.
    new gcp.storage.BucketIAMMember(
      "builder-functions-source",
      {
        bucket: sourceBucket.name,
        role: "roles/storage.objectViewer",
        member: pulumi.interpolate`serviceAccount:${args.builderServiceAccount}`,
      },
      { parent: this },
    );
    const source = functionsSource(args.sourceRoot);
    // The object name carries the content hash: a new build is a new object, which is what
    // makes Cloud Functions rebuild (same name, new bytes would be no diff at all).
    const sourceObject = new gcp.storage.BucketObject(
      "functions-source",
      { bucket: sourceBucket.name, name: `functions-${source.hash}.zip`, source: source.archive },
      { parent: this },
    );

    const sharedEnv = {
      GCP_PROJECT: project,
      UPLOADS_BUCKET: args.uploadsBucket,
      RESULTS_BUCKET: args.resultsBucket,
      JOBS_TOPIC: args.jobsTopic,
      JOBS_BATCH_TOPIC: args.jobsBatchTopic,
      // The sweeper fails an orphan past the deadline the workers enforce on the jobs they run.
      JOB_DEADLINE_SECONDS: String(config.jobDeadlineSeconds),
      SIGNED_URL_TTL_SECONDS: String(config.signedUrlTtlSeconds),
      RESULT_URL_TTL_SECONDS: String(config.resultUrlTtlSeconds),
      MAX_DIRECT_UPLOAD_BYTES: String(config.maxDirectUploadBytes),
      MAX_UPLOAD_BYTES: String(config.maxUploadBytes),
      // Express (under the Functions Framework) puts stack traces in error pages otherwise.
      NODE_ENV: "production",
      // The sweeper fails a ghost job after as many attempts as the workers allow.
      MAX_ATTEMPTS: String(config.maxDeliveryAttempts),
      QUOTA_REQUESTS_PER_MINUTE: String(config.quotaRequestsPerMinute),
      QUOTA_JOBS_IN_FLIGHT: String(config.quotaJobsInFlight),
      // Said out loud: a deployment never lets webhooks reach http or loopback (the local stack's switch).
      WEBHOOK_ALLOW_LOOPBACK_HTTP: "false",
    };
    const buildConfig = (entryPoint: string): gcp.types.input.cloudfunctionsv2.FunctionBuildConfig => ({
      runtime: "nodejs24",
      entryPoint,
      source: { storageSource: { bucket: sourceBucket.name, object: sourceObject.name } },
      // The stack's own build account: new projects' default Cloud Build account lacks the roles
      // a build needs. Its images go to the stack's repository, where it may push, instead of
      // the gcf-artifacts repository Cloud Functions would otherwise create.
      serviceAccount: pulumi.interpolate`projects/${project}/serviceAccounts/${args.builderServiceAccount}`,
      dockerRepository: pulumi.interpolate`projects/${project}/locations/${config.region}/repositories/${args.imageRepository}`,
      environmentVariables: {
        // dist/ is already built: the buildpack must not run the package's build scripts, and
        // installs production dependencies only.
        GOOGLE_NODE_RUN_SCRIPTS: "",
        NODE_ENV: "production",
      },
    });

    this.api = new gcp.cloudfunctionsv2.Function(
      "api",
      {
        project,
        location: config.region,
        name: stackName(config, "api"),
        buildConfig: buildConfig("api"),
        serviceConfig: {
          serviceAccountEmail: args.apiServiceAccount,
          availableMemory: "512Mi",
          // A direct request may wait up to 60 s for its job (Prefer: wait=60) after its upload
          // has been read; 90 s leaves the upload and the answer room (docs/api.md).
          timeoutSeconds: 90,
          minInstanceCount: config.apiMinInstances,
          maxInstanceCount: config.apiMaxInstances,
          // One instance serves many short Firestore-bound requests at once.
          maxInstanceRequestConcurrency: 40,
          availableCpu: "1",
          ingressSettings: "ALLOW_ALL",
          environmentVariables: {
            ...sharedEnv,
            AUTH_MODE: "firebase",
            // Empty means no browser origin at all, not the code's default of "*".
            CORS_ORIGINS: config.corsOrigins.join(","),
            FIREBASE_PROJECT_ID: config.firebaseProjectId,
          },
        },
      },
      { parent: this },
    );
    // The API is public at the network level; every route checks a Firebase ID token itself.
    new gcp.cloudrunv2.ServiceIamMember(
      "api-public-invoker",
      { project, location: config.region, name: this.api.name, role: "roles/run.invoker", member: "allUsers" },
      { parent: this },
    );

    this.uploadFinalized = new gcp.cloudfunctionsv2.Function(
      "upload-finalized",
      {
        project,
        location: config.region,
        name: stackName(config, "upload-finalized"),
        buildConfig: buildConfig("uploadFinalized"),
        serviceConfig: {
          serviceAccountEmail: args.uploadTriggerServiceAccount,
          availableMemory: "256Mi",
          timeoutSeconds: 60,
          maxInstanceCount: config.apiMaxInstances,
          ingressSettings: "ALLOW_INTERNAL_ONLY",
          environmentVariables: sharedEnv,
        },
        eventTrigger: {
          eventType: "google.cloud.storage.object.v1.finalized",
          triggerRegion: config.region,
          eventFilters: [{ attribute: "bucket", value: args.uploadsBucket }],
          serviceAccountEmail: args.uploadTriggerServiceAccount,
          // Retry transient failures (up to Eventarc's 24 h); the handler is idempotent per
          // object, so a repeated event never starts a second job.
          retryPolicy: "RETRY_POLICY_RETRY",
        },
      },
      { parent: this },
    );
    // Eventarc invokes the function's Cloud Run service as the trigger's account.
    new gcp.cloudrunv2.ServiceIamMember(
      "upload-finalized-invoker",
      {
        project,
        location: config.region,
        name: this.uploadFinalized.name,
        role: "roles/run.invoker",
        member: pulumi.interpolate`serviceAccount:${args.uploadTriggerServiceAccount}`,
      },
      { parent: this },
    );

    const backgroundAccount = pulumi.interpolate`serviceAccount:${args.uploadTriggerServiceAccount}`;
    this.deadLetter = new gcp.cloudfunctionsv2.Function(
      "dead-letter",
      {
        project,
        location: config.region,
        name: stackName(config, "dead-letter"),
        buildConfig: buildConfig("deadLetter"),
        serviceConfig: {
          serviceAccountEmail: args.uploadTriggerServiceAccount,
          availableMemory: "256Mi",
          timeoutSeconds: 60,
          maxInstanceCount: 5,
          ingressSettings: "ALLOW_INTERNAL_ONLY",
          environmentVariables: sharedEnv,
        },
        // Eventarc makes its own push subscription on the topic; the operators' pull
        // subscription (infra/messaging.ts) keeps every dead letter for a week besides.
        eventTrigger: {
          eventType: "google.cloud.pubsub.topic.v1.messagePublished",
          triggerRegion: config.region,
          pubsubTopic: args.deadLetterTopic,
          serviceAccountEmail: args.uploadTriggerServiceAccount,
          // The handler reads the job's log first, so a repeated message changes nothing.
          retryPolicy: "RETRY_POLICY_RETRY",
        },
      },
      { parent: this },
    );
    new gcp.cloudrunv2.ServiceIamMember(
      "dead-letter-invoker",
      { project, location: config.region, name: this.deadLetter.name, role: "roles/run.invoker", member: backgroundAccount },
      { parent: this },
    );

    this.sweepJobs = new gcp.cloudfunctionsv2.Function(
      "sweep-jobs",
      {
        project,
        location: config.region,
        name: stackName(config, "sweep-jobs"),
        buildConfig: buildConfig("sweepJobs"),
        serviceConfig: {
          serviceAccountEmail: args.uploadTriggerServiceAccount,
          availableMemory: "256Mi",
          timeoutSeconds: 300,
          // One sweep at a time is enough; two would only race on the same ghosts (harmlessly).
          maxInstanceCount: 1,
          // Cloud Scheduler calls from outside the VPC; only its OIDC identity may invoke.
          ingressSettings: "ALLOW_ALL",
          environmentVariables: sharedEnv,
        },
      },
      { parent: this },
    );
    new gcp.cloudrunv2.ServiceIamMember(
      "sweep-jobs-invoker",
      { project, location: config.region, name: this.sweepJobs.name, role: "roles/run.invoker", member: backgroundAccount },
      { parent: this },
    );
    this.sweepSchedule = new gcp.cloudscheduler.Job(
      "sweep-jobs",
      {
        project,
        region: config.region,
        name: stackName(config, "sweep-jobs"),
        // Every minute: a ghost job waits at most a lease plus a minute before it is requeued.
        schedule: "* * * * *",
        timeZone: "Etc/UTC",
        attemptDeadline: "300s",
        httpTarget: {
          uri: this.sweepJobs.url,
          httpMethod: "POST",
          oidcToken: { serviceAccountEmail: args.uploadTriggerServiceAccount, audience: this.sweepJobs.url },
        },
      },
      { parent: this },
    );

    this.webhookEvents = new gcp.cloudfunctionsv2.Function(
      "webhook-events",
      {
        project,
        location: config.region,
        name: stackName(config, "webhook-events"),
        buildConfig: buildConfig("webhookEvents"),
        serviceConfig: {
          serviceAccountEmail: args.webhooksServiceAccount,
          availableMemory: "256Mi",
          // One event: a log read, an outbox write and one attempt (at most WEBHOOK_TIMEOUT_SECONDS).
          timeoutSeconds: 60,
          maxInstanceCount: config.apiMaxInstances,
          ingressSettings: "ALLOW_INTERNAL_ONLY",
          environmentVariables: sharedEnv,
        },
        // Every event a job records; the function keeps those its webhook asks for. Firestore
        // triggers live in the database's location.
        eventTrigger: {
          eventType: "google.cloud.firestore.document.v1.created",
          triggerRegion: config.firestoreLocation,
          eventFilters: [
            { attribute: "database", value: "(default)" },
            { attribute: "document", value: "jobs/{jobId}/events/{seq}", operator: "match-path-pattern" },
          ],
          serviceAccountEmail: args.webhooksServiceAccount,
          // At least once: a failed enqueue is retried, and a repeat adds nothing (the message id
          // is fixed by the job and the event's seq).
          retryPolicy: "RETRY_POLICY_RETRY",
        },
      },
      { parent: this },
    );
    new gcp.cloudrunv2.ServiceIamMember(
      "webhook-events-invoker",
      {
        project,
        location: config.region,
        name: this.webhookEvents.name,
        role: "roles/run.invoker",
        member: pulumi.interpolate`serviceAccount:${args.webhooksServiceAccount}`,
      },
      { parent: this },
    );

    this.apiUrl = this.api.url;
    this.registerOutputs({ apiUrl: this.apiUrl });
  }
}

/**
 * The uploaded package: dist/, the lock file, and a package.json whose `main` is the functions'
 * entry and whose scripts are gone (the buildpack would otherwise try to rebuild with tsc).
 */
function functionsSource(root: string): { archive: pulumi.asset.AssetArchive; hash: string } {
  const dist = join(root, "dist");
  if (!existsSync(join(root, functionsEntry))) {
    if (!pulumi.runtime.isDryRun()) {
      throw new Error(`${functionsEntry} is missing under ${root}: run \`npm run build\` before \`pulumi up\``);
    }
    pulumi.log.warn(`${functionsEntry} is missing: run \`npm run build\` before \`pulumi up\``);
  }
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as Record<string, unknown>;
  delete pkg.scripts;
  const packageJson = JSON.stringify({ ...pkg, main: functionsEntry }, null, 2);
  const lockPath = join(root, "package-lock.json");

  const hash = createHash("sha256");
  hash.update(packageJson);
  if (existsSync(lockPath)) hash.update(readFileSync(lockPath));
  for (const file of filesUnder(dist)) {
    hash.update(relative(root, file));
    hash.update(readFileSync(file));
  }
  return {
    archive: new pulumi.asset.AssetArchive({
      "package.json": new pulumi.asset.StringAsset(packageJson),
      "package-lock.json": new pulumi.asset.FileAsset(lockPath),
      dist: new pulumi.asset.FileArchive(dist),
    }),
    hash: hash.digest("hex").slice(0, 16),
  };
}

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .flatMap((entry) => {
      const path = join(dir, entry);
      return statSync(path).isDirectory() ? filesUnder(path) : [path];
    });
}

/** The repository root: the folder that holds infra/. */
export const repositoryRoot = fileURLToPath(new URL("..", import.meta.url));
