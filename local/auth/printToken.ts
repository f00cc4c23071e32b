/** `npm run token -- <userId>`: prints an ID token for that user, signed by the local issuer. */
import { DEFAULT_NAMES } from "../stack/localStack.js";
import { signLocalToken } from "./localIssuer.js";

const userId = process.argv[2];
if (!userId) {
  console.error("usage: npm run token -- <userId>");
  process.exit(2);
}
console.log(await signLocalToken(userId, { audience: DEFAULT_NAMES.projectId }));
