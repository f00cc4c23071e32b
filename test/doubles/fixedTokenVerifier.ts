/**
 * A token verifier that knows a fixed set of tokens: the `TokenVerifier` port's double
 * (events/tokenVerifier.ts). It keeps the JWT adapter's rules of refusal: no token is
 * "missing_token", any other unknown token "invalid_token".
 */
import { AuthError } from "../../events/errors.js";
import type { TokenVerifier } from "../../events/tokenVerifier.js";

export function createFixedTokenVerifier(tokens: Record<string, string>): TokenVerifier {
  return {
    async verify(token) {
      if (!token) throw new AuthError("missing_token", "an Authorization: Bearer token is required");
      const userId = tokens[token];
      if (userId === undefined) throw new AuthError("invalid_token", "the token is not valid");
      return { userId };
    },
  };
}
