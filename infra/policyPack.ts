/**
 * The policy pack: `pulumi preview --policy-pack infra/policy-pack` (that folder's
 * PulumiPolicy.yaml points here). Importing this file starts the policy server, so tests import
 * infra/policies.ts instead.
 */
import { PolicyPack } from "@pulumi/policy";

import { policies } from "./policies.js";

new PolicyPack("image-edit-guardrails", { policies: [...policies] });
