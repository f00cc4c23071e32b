/**
 * Prints the faults tier's summary line from the counts each suite recorded:
 *   jobs submitted, duplicates injected, crashes injected, network faults injected, lost = 0, doubled = 0, bad inputs rejected = N/N
 * Exits non-zero when nothing was recorded, or when anything was lost or doubled.
 */
import { existsSync, readFileSync } from "node:fs";
import { FAULT_COUNTS_FILE } from "./faultsSetup.js";
import type { FaultCounts } from "./faultKit.js";

const rows: FaultCounts[] = existsSync(FAULT_COUNTS_FILE)
  ? readFileSync(FAULT_COUNTS_FILE, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as FaultCounts)
  : [];
const sum = (key: keyof Omit<FaultCounts, "suite">) => rows.reduce((total, row) => total + (row[key] ?? 0), 0);
const totals = {
  jobs: sum("jobsSubmitted"),
  duplicates: sum("duplicatesInjected"),
  crashes: sum("crashesInjected"),
  lost: sum("lost"),
  doubled: sum("doubled"),
  badInputs: sum("badInputs"),
  rejected: sum("badInputsRejected"),
  network: sum("networkFaultsInjected"),
};
console.log(`suites recorded: ${rows.map((row) => row.suite).join(", ") || "none"}`);
console.log(
  `jobs submitted = ${totals.jobs}, duplicates injected = ${totals.duplicates}, crashes injected = ${totals.crashes}, ` +
    `network faults injected = ${totals.network}, ` +
    `lost = ${totals.lost}, doubled = ${totals.doubled}, bad inputs rejected = ${totals.rejected}/${totals.badInputs}`,
);
if (rows.length === 0 || totals.lost > 0 || totals.doubled > 0 || totals.rejected !== totals.badInputs) process.exit(1);
