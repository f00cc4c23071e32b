/**
 * Firestore: the (default) database with point-in-time recovery and backups where the stack asks
 * for them, the composite indexes behind the API's queries, the TTL policy that deletes expired
 * quota counters, and the security rules from infra/firestore.rules.
 */
import { readFileSync } from "node:fs";

import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";

import type { InfraConfig } from "./config.js";

/** The rules file the program deploys and the emulator test loads. */
export const firestoreRulesPath = new URL("./firestore.rules", import.meta.url);

/**
 * The API's request counter (adapters/firestore/firestoreRequestCounter.ts) writes sixteen shard
 * documents per user and minute under `quotaWindows/{window}/shards`, each with `expiresAt` ten
 * minutes on. Nothing else deletes them: without this TTL policy the collection grows by a
 * window per user and minute forever.
 */
export const quotaCounterTtl = { collectionGroup: "shards", field: "expiresAt" } as const;

/**
 * The webhook outbox (adapters/firestore/firestoreWebhookOutbox.ts) keeps one document per
 * message with `expiresAt` a week after it was made, past the 24 h of retries, for the owner to
 * read its attempts; this TTL policy deletes them then.
 */
export const webhookDeliveriesTtl = { collectionGroup: "webhookDeliveries", field: "expiresAt" } as const;

type IndexField = { fieldPath: string; order: "ASCENDING" | "DESCENDING" };

/**
 * Composite indexes on `jobs`, one per query the API makes. Firestore rejects a query that needs a
 * missing composite index, so each entry names the query it serves.
 */
export const jobIndexes: ReadonlyArray<{ id: string; query: string; fields: IndexField[] }> = [
  {
    id: "jobs-by-owner-newest",
    query: "where ownerId == X orderBy createdAt desc (a user's job list)",
    fields: [
      { fieldPath: "ownerId", order: "ASCENDING" },
      { fieldPath: "createdAt", order: "DESCENDING" },
    ],
  },
  {
    id: "jobs-by-owner-status",
    // Index merging could serve this equality-only query, but one composite keeps the quota
    // check a single index scan however many jobs a user has.
    query: "where ownerId == X and status in [...] (in-flight quota)",
    fields: [
      { fieldPath: "ownerId", order: "ASCENDING" },
      { fieldPath: "status", order: "ASCENDING" },
    ],
  },
  {
    id: "jobs-expired-leases",
    query: "where status == 'running' and leaseExpiresAt < now (sweeper)",
    fields: [
      { fieldPath: "status", order: "ASCENDING" },
      { fieldPath: "leaseExpiresAt", order: "ASCENDING" },
    ],
  },
  {
    id: "jobs-overdue",
    query: "where status in ['queued', 'running'] and firstStartedAt < cutoff (sweeper: job deadline)",
    fields: [
      { fieldPath: "status", order: "ASCENDING" },
      { fieldPath: "firstStartedAt", order: "ASCENDING" },
    ],
  },
  {
    id: "jobs-stale-queued",
    query: "where status == 'queued' and updatedAt < cutoff (sweeper: lost messages)",
    fields: [
      { fieldPath: "status", order: "ASCENDING" },
      { fieldPath: "updatedAt", order: "ASCENDING" },
    ],
  },
];

export class Firestore extends pulumi.ComponentResource {
  readonly database: gcp.firestore.Database;
  readonly rulesRelease: gcp.firebaserules.Release;

  constructor(name: string, args: { config: InfraConfig }, opts?: pulumi.ComponentResourceOptions) {
    super("image-edit:infra:Firestore", name, {}, opts);
    const { config } = args;
    const project = config.project;

    // "(default)": the Firebase client SDKs and the Admin SDK use it without extra settings.
    // A project that already has one must `pulumi import` it (see infra/README.md).
    this.database = new gcp.firestore.Database(
      "database",
      {
        project,
        name: "(default)",
        locationId: config.firestoreLocation,
        type: "FIRESTORE_NATIVE",
        // Transactions (append event + update projection) rely on optimistic concurrency.
        concurrencyMode: "OPTIMISTIC",
        deleteProtectionState: config.protectData ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED",
        deletionPolicy: config.protectData ? "ABANDON" : "DELETE",
        // Reads of the database as it was at any minute of the last 7 days: the way back from a
        // deploy or a script that wrote bad events (see infra/README.md, rolling back).
        pointInTimeRecoveryEnablement: config.firestorePointInTimeRecovery
          ? "POINT_IN_TIME_RECOVERY_ENABLED"
          : "POINT_IN_TIME_RECOVERY_DISABLED",
      },
      { parent: this },
    );

    if (config.firestoreBackupRetentionDays > 0) {
      // PITR covers a week; a daily backup outlives it, and survives the database's deletion.
      new gcp.firestore.BackupSchedule(
        "daily-backup",
        {
          project,
          database: this.database.name,
          retention: `${config.firestoreBackupRetentionDays * 86_400}s`,
          dailyRecurrence: {},
        },
        { parent: this },
      );
    }

    new gcp.firestore.Field(
      "quota-counter-ttl",
      {
        project,
        database: this.database.name,
        collection: quotaCounterTtl.collectionGroup,
        field: quotaCounterTtl.field,
        ttlConfig: {},
        // No single-field index on a TTL timestamp: nothing queries it, and an index on an
        // always-increasing value is a write hotspot.
        indexConfig: {},
      },
      { parent: this },
    );

    new gcp.firestore.Field(
      "webhook-deliveries-ttl",
      {
        project,
        database: this.database.name,
        collection: webhookDeliveriesTtl.collectionGroup,
        field: webhookDeliveriesTtl.field,
        ttlConfig: {},
        indexConfig: {},
      },
      { parent: this },
    );

    for (const index of jobIndexes) {
      new gcp.firestore.Index(
        index.id,
        { project, database: this.database.name, collection: "jobs", queryScope: "COLLECTION", fields: index.fields },
        { parent: this },
      );
    }

    const ruleset = new gcp.firebaserules.Ruleset(
      "firestore-rules",
      {
        project,
        source: { files: [{ name: "firestore.rules", content: readFileSync(firestoreRulesPath, "utf8") }] },
      },
      { parent: this, dependsOn: [this.database] },
    );
    // "cloud.firestore" is the release the (default) database serves rules from.
    this.rulesRelease = new gcp.firebaserules.Release(
      "firestore-rules",
      { project, name: "cloud.firestore", rulesetName: pulumi.interpolate`projects/${project}/rulesets/${ruleset.name}` },
      { parent: this },
    );
    this.registerOutputs({});
  }
}
