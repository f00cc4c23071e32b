/**
 * The contract every TokenVerifier keeps, run against the Firebase adapter (with the Auth
 * emulator's users, in the int tier) and against the fixed double: a good token names its
 * caller, no token is "missing_token", anything else is refused as "invalid_token", and a
 * revoked account's token is refused where revocation is checked ("revoked_token"). Without the
 * check an adapter may still take it until it expires (production's firebase-admin does, to save a
 * call per request; against the emulator it checks every time), so the contract leaves that open.
 */
import { describe, expect, it } from "vitest";
import { AuthError } from "../../events/errors.js";
import type { TokenVerifier } from "../../events/tokenVerifier.js";

export interface VerifierUnderTest {
  verifier: TokenVerifier;
  /** A token the verifier accepts for the user. */
  token: string;
  /** Revokes the user's sessions (disables the account) at the identity service. */
  revoke(): Promise<void>;
}

/** `make` gives a verifier, a token it accepts for `userId`, and a way to revoke it. */
export function tokenVerifierContract(adapter: string, make: (userId: string) => Promise<VerifierUnderTest>): void {
  describe(`TokenVerifier contract: ${adapter}`, () => {
    const refusal = async (work: Promise<unknown>) => {
      const error = await work.then(() => undefined, (caught: unknown) => caught);
      expect(error).toBeInstanceOf(AuthError);
      return (error as AuthError).code;
    };

    it("names the caller of a token it accepts", async () => {
      const userId = `user-${crypto.randomUUID()}`;
      const { verifier, token } = await make(userId);
      expect(await verifier.verify(token)).toEqual({ userId });
      expect(await verifier.verify(token, { checkRevoked: true })).toEqual({ userId });
    });

    it("refuses no token as missing, and a token it did not issue as invalid", async () => {
      const { verifier, token } = await make(`user-${crypto.randomUUID()}`);
      expect(await refusal(verifier.verify(""))).toBe("missing_token");
      expect(await refusal(verifier.verify("not-a-token"))).toBe("invalid_token");
      expect(await refusal(verifier.verify(`${token.slice(0, -8)}x`))).toBe("invalid_token");
    });

    it("refuses a revoked account's token where revocation is checked", async () => {
      const { verifier, token, revoke } = await make(`user-${crypto.randomUUID()}`);
      await revoke();
      expect(await refusal(verifier.verify(token, { checkRevoked: true }))).toBe("revoked_token");
    });
  });
}
