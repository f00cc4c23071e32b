/**
 * The in-memory doubles of the core's ports, each held to the contract suite its real adapter
 * passes in the int tier, so that the unit tests that use them test real behaviour.
 */
import { generateKeyPairSync, randomUUID } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT } from "jose";
import { createJwtTokenVerifier } from "../../adapters/auth/jwtTokenVerifier.js";
import { createFixedTokenVerifier } from "../doubles/fixedTokenVerifier.js";
import { createMemoryImageStore } from "../doubles/memoryImageStore.js";
import { createMemoryRequestCounter } from "../doubles/memoryRequestCounter.js";
import { createMemoryInferenceClient } from "../doubles/memoryInferenceClient.js";
import { createMemoryJobQueue } from "../doubles/memoryJobQueue.js";
import { imageStoreContract } from "../support/imageStoreContract.js";
import { requestCounterContract } from "../support/requestCounterContract.js";
import { inferenceContract } from "../support/inferenceContract.js";
import { jobQueueContract } from "../support/jobQueueContract.js";
import { tokenVerifierContract } from "../support/tokenVerifierContract.js";
import { createMemoryWebhookOutbox } from "../doubles/memoryWebhookOutbox.js";
import { createMemoryWebhookSecrets } from "../doubles/memoryWebhookSecrets.js";
import { webhookOutboxContract, webhookSecretsContract } from "../support/webhookOutboxContract.js";

imageStoreContract("in memory (the unit tests' double)", async () => ({ images: createMemoryImageStore(), bucket: `bucket-${randomUUID()}` }));

jobQueueContract("in memory (the unit tests' double)", async () => {
  const queue = createMemoryJobQueue();
  return { queue, subscribe: () => queue.subscription() };
});

const inference = createMemoryInferenceClient();
inferenceContract("in memory (the unit tests' double)", () => inference);

tokenVerifierContract("in memory (the unit tests' double)", async (userId) => {
  const token = `token-${randomUUID()}`;
  return { verifier: createFixedTokenVerifier({ [token]: userId }), token };
});

tokenVerifierContract("JWT (a key of the test's own, as a JWKS file)", async (userId) => {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const kid = randomUUID();
  const jwks = join(mkdtempSync(join(tmpdir(), "jwks-")), "jwks.json");
  writeFileSync(jwks, JSON.stringify({ keys: [{ ...publicKey.export({ format: "jwk" }), kid, alg: "RS256", use: "sig" }] }));
  const issuer = "https://issuer.test.invalid";
  const audience = `aud-${randomUUID()}`;
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: "RS256", kid })
    .setIssuer(issuer)
    .setAudience(audience)
    .setSubject(userId)
    .setIssuedAt()
    .setExpirationTime("5m")
    .sign(privateKey);
  return { verifier: createJwtTokenVerifier({ issuer, audience, jwks }), token };
});

requestCounterContract("in memory (the unit tests' double)", createMemoryRequestCounter);

webhookOutboxContract("in memory (the unit tests' double)", createMemoryWebhookOutbox);
webhookSecretsContract("in memory (the unit tests' double)", createMemoryWebhookSecrets);
