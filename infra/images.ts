/**
 * The worker and Triton images, built by `pulumi up` itself and deployed by digest.
 *
 * Each build is `gcloud builds submit` run through @pulumi/command: Cloud Build builds the image
 * next to the registry, as the stack's own build account, and the program reads back the digest
 * it pushed. Why not @pulumi/docker-build: that builds on the operator's machine, so it needs
 * Docker with BuildKit there and would pull Triton's ~15 GB base image over the operator's link
 * and push it back up; Cloud Build needs only the gcloud the deploy already uses.
 *
 * Tags are content hashes of what goes into the image: an unchanged source reuses the image
 * already in the registry (no rebuild), and a changed one gets a new tag, so the Deployments roll.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";

import type { InfraConfig } from "./config.js";

const infraDir = fileURLToPath(new URL(".", import.meta.url));

export interface ImagesArgs {
  config: InfraConfig;
  /** The repository root (the worker's build context). */
  repositoryRoot: string;
  /** `<region>-docker.pkg.dev/<project>/<repo>`. */
  registryUrl: pulumi.Input<string>;
  builderServiceAccount: pulumi.Input<string>;
  buildSourceBucket: pulumi.Input<string>;
}

export class Images extends pulumi.ComponentResource {
  /** `<repo>/worker@sha256:…`. */
  readonly worker: pulumi.Output<string>;
  /** `<repo>/triton@sha256:…`. */
  readonly triton: pulumi.Output<string>;

  constructor(name: string, args: ImagesArgs, opts?: pulumi.ComponentResourceOptions) {
    super("image-edit:infra:Images", name, {}, opts);
    const { config } = args;
    const build = (image: string, spec: BuildSpec) => {
      const ref = pulumi.interpolate`${args.registryUrl}/${image}:${spec.tag}`;
      const built = new command.local.Command(
        `build-${image}`,
        {
          create: buildScript,
          environment: {
            IMAGE: ref,
            PROJECT: config.project,
            REGION: config.region,
            SOURCE_DIR: spec.sourceDir,
            IGNORE_FILE: spec.ignoreFile,
            DOCKERFILE: spec.dockerfile,
            BUILD_CONFIG: join(infraDir, "cloudbuild.yaml"),
            TRITON_TAG: config.tritonImageTag,
            BUILDER: args.builderServiceAccount,
            STAGING: pulumi.interpolate`gs://${args.buildSourceBucket}/source`,
          },
          // A new tag (changed source) is a new build; the same tag is the same image.
          triggers: [ref],
        },
        { parent: this },
      );
      return pulumi.all([args.registryUrl, built.stdout]).apply(([registry, stdout]) => {
        const digest = stdout.trim().split("\n").pop() ?? "";
        if (!/^sha256:[0-9a-f]{64}$/.test(digest)) {
          throw new Error(`the ${image} build did not report a digest (got "${digest}"); see its Cloud Build log`);
        }
        return `${registry}/${image}@${digest}`;
      });
    };

    this.worker = config.workerImage
      ? pulumi.output(config.workerImage)
      : build("worker", {
          tag: `src-${contextHash(args.repositoryRoot, join(infraDir, "worker.gcloudignore"))}`,
          sourceDir: args.repositoryRoot,
          ignoreFile: relative(args.repositoryRoot, join(infraDir, "worker.gcloudignore")),
          dockerfile: "workers/Dockerfile",
        });
    this.triton = config.tritonImage
      ? pulumi.output(config.tritonImage)
      : build("triton", {
          tag: `${config.tritonImageTag}-${contextHash(infraDir, join(infraDir, "triton.gcloudignore"), ["triton.Dockerfile", "cloudbuild.yaml"])}`,
          sourceDir: infraDir,
          ignoreFile: "triton.gcloudignore",
          dockerfile: "triton.Dockerfile",
        });
    this.registerOutputs({ worker: this.worker, triton: this.triton });
  }
}

interface BuildSpec {
  tag: string;
  sourceDir: string;
  /** Relative to `sourceDir` (gcloud resolves it there). */
  ignoreFile: string;
  /** Relative to `sourceDir`. */
  dockerfile: string;
}

/**
 * Builds unless the tag is already in the registry, then prints the image's digest (the only
 * line on stdout; gcloud's progress goes to stderr).
 */
const buildScript = `set -eu
if gcloud artifacts docker images describe "$IMAGE" --project "$PROJECT" >/dev/null 2>&1; then
  echo "$IMAGE is already built" >&2
else
  gcloud builds submit "$SOURCE_DIR" --project "$PROJECT" --region "$REGION" --config "$BUILD_CONFIG" \\
    --ignore-file "$IGNORE_FILE" --gcs-source-staging-dir "$STAGING" \\
    --service-account "projects/$PROJECT/serviceAccounts/$BUILDER" \\
    --substitutions "_IMAGE=$IMAGE,_DOCKERFILE=$DOCKERFILE,_TRITON_TAG=$TRITON_TAG" --quiet >&2
fi
gcloud artifacts docker images describe "$IMAGE" --project "$PROJECT" --format 'value(image_summary.digest)'
`;

/**
 * The ignore file's rules, as far as this program uses them: "/name" leaves out a top-level entry,
 * "**\/pattern" or "pattern" a file or folder of that name anywhere ("*" as a wildcard), "!name"
 * keeps one back.
 */
export function ignoreRules(ignoreFile: string): { ignored(path: string): boolean } {
  const lines = readFileSync(ignoreFile, "utf8")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith("#"));
  const glob = (pattern: string) => new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replaceAll("*", ".*")}$`);
  const rules = lines.map((line) => {
    const keep = line.startsWith("!");
    const body = keep ? line.slice(1) : line;
    const anchored = body.startsWith("/");
    return { keep, anchored, pattern: glob(body.replace(/^\/|^\*\*\//, "")) };
  });
  return {
    ignored(path) {
      const parts = path.split("/");
      let ignored = false;
      for (const rule of rules) {
        const hit = rule.anchored
          ? rule.pattern.test(parts[0] ?? "")
          : parts.some((part) => rule.pattern.test(part));
        if (hit) ignored = !rule.keep;
      }
      return ignored;
    },
  };
}

/** sha256 (16 hex) over the names and bytes of the files a build would upload. */
export function contextHash(dir: string, ignoreFile: string, only?: readonly string[]): string {
  const rules = ignoreRules(ignoreFile);
  const hash = createHash("sha256");
  const files = only ? only.map((name) => join(dir, name)) : filesUnder(dir, dir, rules);
  for (const file of files) {
    hash.update(relative(dir, file).split(sep).join("/"));
    hash.update(readFileSync(file));
  }
  return hash.digest("hex").slice(0, 16);
}

function filesUnder(root: string, dir: string, rules: { ignored(path: string): boolean }): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .flatMap((entry) => {
      const path = join(dir, entry);
      if (rules.ignored(relative(root, path).split(sep).join("/"))) return [];
      return statSync(path).isDirectory() ? filesUnder(root, path, rules) : [path];
    });
}
