/**
 * Bearer-token verification. In production the tokens are Firebase Auth ID tokens: RS256, signed
 * by keys Google publishes as a JWKS, issuer `https://securetoken.google.com/<project>` and
 * audience `<project>`. The local stack's issuer signs the same kind of token with its own key,
 * published as a JWKS file; the checks below are the same for both.
 */
import { readFileSync } from "node:fs";
import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify, type JSONWebKeySet } from "jose";
import { AuthError } from "../../events/errors.js";
import type { TokenVerifier } from "../../events/tokenVerifier.js";

/** Google's public keys for Firebase Auth ID tokens. */
export const FIREBASE_JWKS_URL = "https://www.googleapis.com/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com";

export interface JwtVerifierOptions {
  issuer: string;
  audience: string;
  /** An https URL of a JWKS (production), or the path of a JWKS file (the local issuer). */
  jwks: string;
  /** Clock skew tolerated on `exp`, `iat` and `auth_time`. */
  clockToleranceSeconds?: number;
  /** The longest lifetime a token may have (`exp` − `iat`) and the oldest `iat` taken; Firebase's are one hour. */
  maxTokenAgeSeconds?: number;
}

export function createJwtTokenVerifier(options: JwtVerifierOptions): TokenVerifier {
  const keys = /^https?:\/\//.test(options.jwks)
    ? createRemoteJWKSet(new URL(options.jwks))
    : createLocalJWKSet(JSON.parse(readFileSync(options.jwks, "utf8")) as JSONWebKeySet);
  const tolerance = options.clockToleranceSeconds ?? 30;
  const maxAge = options.maxTokenAgeSeconds ?? 3600;
  return {
    async verify(token) {
      if (!token) throw new AuthError("missing_token", "an Authorization: Bearer token is required");
      try {
        const { payload } = await jwtVerify(token, keys, {
          issuer: options.issuer,
          audience: options.audience,
          algorithms: ["RS256"],
          clockTolerance: tolerance,
          requiredClaims: ["sub", "exp", "iat"],
          maxTokenAge: maxAge,
        });
        const now = Date.now() / 1000;
        const issuedAt = payload.iat as number;
        if (issuedAt > now + tolerance) throw new AuthError("invalid_token", "the token was issued in the future");
        if ((payload.exp as number) - issuedAt > maxAge) throw new AuthError("invalid_token", `the token lives longer than ${maxAge} seconds`);
        // Firebase ID tokens name exactly one audience.
        if (typeof payload.aud !== "string") throw new AuthError("invalid_token", "the token must name exactly one audience");
        const subject = payload.sub ?? "";
        // Firebase's own rules for ID tokens: a non-empty uid of at most 128 characters, and an
        // authentication time that is not in the future.
        if (subject === "" || subject.length > 128) throw new AuthError("invalid_token", "the token has no valid subject");
        const authTime = payload.auth_time;
        if (typeof authTime === "number" && authTime > now + tolerance) {
          throw new AuthError("invalid_token", "the token was issued for a future sign-in");
        }
        return { userId: subject };
      } catch (error) {
        if (error instanceof AuthError) throw error;
        if (error instanceof errors.JWTExpired) throw new AuthError("expired_token", "the token has expired");
        throw new AuthError("invalid_token", "the token is not valid");
      }
    },
  };
}
