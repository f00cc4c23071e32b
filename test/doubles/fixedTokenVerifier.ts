/**
 * A token verifier that knows a fixed set of tokens: the `TokenVerifier` port's double
 * (events/tokenVerifier.ts). It keeps the Firebase adapter's rules of refusal: no token is
 * "missing_token", any other unknown token "invalid_token", and a token of a user in `revoked`
 * is "revoked_token" where revocation is checked.
 */
import { AuthError } from "../../events/errors.js";
import type { TokenVerifier } from "../../events/tokenVerifier.js";

export function createFixedTokenVerifier(tokens: Record<string, string>, revoked: Set<string> = new Set()): TokenVerifier {
  return {
    async verify(token, options = {}) {
      if (!token) throw new AuthError("missing_token", "an Authorization: Bearer token is required");
      const userId = tokens[token];
      if (userId === undefined) throw new AuthError("invalid_token", "the token is not valid");
      if (options.checkRevoked && revoked.has(userId)) throw new AuthError("revoked_token", "the account is disabled");
      return { userId };
    },
  };
}
