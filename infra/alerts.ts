/**
 * Alert policies in Cloud Monitoring, written in PromQL over what Managed Prometheus collects:
 * the worker's /metrics (PodMonitoring in infra/worker.ts) and the Pub/Sub metrics Cloud
 * Monitoring keeps for every subscription. Each threshold says why it is where it is.
 */
import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";

import { stackName, type InfraConfig } from "./config.js";

export interface AlertsArgs {
  config: InfraConfig;
  jobsSubscription: pulumi.Input<string>;
}

/** One alert: a PromQL condition that must hold for `for` before it fires. */
interface AlertRule {
  name: string;
  title: string;
  severity: "CRITICAL" | "ERROR" | "WARNING";
  query: pulumi.Input<string>;
  for: string;
  /** What it means and what to look at first, shown on the incident. */
  runbook: string;
}

export class Alerts extends pulumi.ComponentResource {
  readonly policies: gcp.monitoring.AlertPolicy[];

  constructor(name: string, args: AlertsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("image-edit:infra:Alerts", name, {}, opts);
    const { config } = args;
    const ns = config.namespace;
    const deadline = config.jobDeadlineSeconds;
    const subscription = (id: pulumi.Input<string>) => pulumi.interpolate`subscription_id="${id}",monitored_resource="pubsub_subscription"`;
    // The backlog the whole worker fleet is sized for: KEDA adds a replica per this many messages.
    const fleetBacklog = config.workerMaxReplicas * config.workerBacklogPerReplica;
    // Who gets told: an email channel per address in `alertEmails`, plus existing channels.
    const emailChannels = config.alertEmails.map(
      (email, i) =>
        new gcp.monitoring.NotificationChannel(
          `alert-email-${i}`,
          {
            project: config.project,
            displayName: `${email} (${config.stack})`,
            type: "email",
            labels: { email_address: email },
          },
          { parent: this },
        ),
    );
    const notificationChannels = [...config.alertNotificationChannels, ...emailChannels.map((c) => c.name)];

    const rules: AlertRule[] = [
      {
        name: "backlog-growing",
        title: "Job backlog is growing past what the workers can take",
        severity: "ERROR",
        // Above the backlog KEDA sizes the full fleet for and still rising for 15 minutes: the
        // workers are at their ceiling or not taking jobs. Under it, KEDA is still scaling and a
        // burst is normal; 15 minutes outlasts a GPU node's cold start (Triton from zero).
        query: pulumi.interpolate`(sum(pubsub_googleapis_com:subscription_num_undelivered_messages{${subscription(args.jobsSubscription)}}) > ${fleetBacklog}) and (sum(deriv(pubsub_googleapis_com:subscription_num_undelivered_messages{${subscription(args.jobsSubscription)}}[10m])) > 0)`,
        for: "900s",
        runbook: "Check the worker replicas (KEDA at workerMaxReplicas?), image_edit_triton_ready, and the workers' logs.",
      },
      {
        name: "error-rate",
        title: "More than 5% of jobs fail",
        severity: "ERROR",
        // Final failures over finished jobs, from the workers (uploads the API refuses are the
        // client's error and not counted). 5% over 15 minutes: a bad model version or a broken
        // dependency shows within minutes, while one person's stream of corrupt photos does not
        // page anyone at normal volume.
        query: `sum(rate(image_edit_jobs_total{namespace="${ns}",outcome="failed"}[15m])) / clamp_min(sum(rate(image_edit_jobs_total{namespace="${ns}",outcome=~"succeeded|failed"}[15m])), 1e-9) > 0.05`,
        for: "600s",
        runbook: "Read the EditFailed reasons (worker logs, severity WARNING, message \"edit failed\"); compare with the last model or worker rollout.",
      },
      {
        name: "dead-lettered",
        title: "Jobs were dead-lettered",
        severity: "WARNING",
        // Any message in the dead-letter topic is a job Pub/Sub gave up on after maxDeliveryAttempts
        // without the worker recording a final failure, which should not happen: alert on one.
        query: pulumi.interpolate`sum(increase(pubsub_googleapis_com:subscription_dead_letter_message_count{${subscription(args.jobsSubscription)}}[10m])) > 0`,
        for: "0s",
        runbook: `Read the messages on the dead-letter subscription (${stackName(config, "edit-jobs-dead-letter-handler")}) and the jobs' events.`,
      },
      {
        name: "oldest-running-job",
        title: "A job has been running for most of its deadline",
        severity: "WARNING",
        // 80% of JOB_DEADLINE_SECONDS: the lease is renewed by heartbeats while the worker lives,
        // so a long job keeps it; past the deadline the job fails with deadline_exceeded. A job
        // this old is stuck (Triton calls hanging, a backlog in Triton) or too large for the deadline.
        query: `max(image_edit_oldest_running_job_age_seconds{namespace="${ns}"}) > ${Math.round(deadline * 0.8)}`,
        for: "60s",
        runbook: "Find the job in the worker logs (jobId on every line) and its trace; check Triton's queue time.",
      },
      {
        name: "triton-not-ready",
        title: "No worker sees Triton ready",
        severity: "CRITICAL",
        // Triton scales to zero, and a GPU node takes minutes to start: 15 minutes without any
        // worker seeing it ready is past a cold start, so jobs are only queueing.
        query: `max(image_edit_triton_ready{namespace="${ns}"}) == 0`,
        for: "900s",
        runbook: "Check the Triton pods (events, GPU node pool scale-up, model load errors in its log).",
      },
    ];

    this.policies = rules.map(
      (rule) =>
        new gcp.monitoring.AlertPolicy(
          `alert-${rule.name}`,
          {
            project: config.project,
            displayName: `${rule.title} (${config.stack})`,
            severity: rule.severity,
            combiner: "OR",
            conditions: [
              {
                displayName: rule.title,
                conditionPrometheusQueryLanguage: {
                  query: rule.query,
                  duration: rule.for,
                  evaluationInterval: "60s",
                  alertRule: rule.name,
                  ruleGroup: stackName(config, "image-edit"),
                },
              },
            ],
            // Incidents close by themselves half an hour after the condition clears.
            alertStrategy: { autoClose: "1800s" },
            notificationChannels,
            documentation: { mimeType: "text/markdown", content: rule.runbook },
          },
          { parent: this },
        ),
    );
    this.registerOutputs({});
  }
}
