/**
 * The contract every TokenVerifier keeps, run against the JWT adapter (with a key of the test's
 * own) and against the fixed double: a good token names its caller, no token is
 * "missing_token", and anything else is refused as "invalid_token".
 */
import { describe, expect, it } from "vitest";
import { AuthError } from "../../events/errors.js";
import type { TokenVerifier } from "../../events/tokenVerifier.js";

/** `make` gives a verifier and a token it accepts for `userId`. */
export function tokenVerifierContract(adapter: string, make: (userId: string) => Promise<{ verifier: TokenVerifier; token: string }>): void {
  describe(`TokenVerifier contract: ${adapter}`, () => {
    const refusal = async (work: Promise<unknown>) => {
      const error = await work.then(() => undefined, (caught: unknown) => caught);
      expect(error).toBeInstanceOf(AuthError);
      return (error as AuthError).code;
    };

    it("names the caller of a token it accepts", async () => {
      const { verifier, token } = await make("user-1");
      expect(await verifier.verify(token)).toEqual({ userId: "user-1" });
    });

    it("refuses no token as missing, and a token it did not issue as invalid", async () => {
      const { verifier, token } = await make("user-2");
      expect(await refusal(verifier.verify(""))).toBe("missing_token");
      expect(await refusal(verifier.verify("not-a-token"))).toBe("invalid_token");
      expect(await refusal(verifier.verify(`${token}x`))).toBe("invalid_token");
    });
  });
}
