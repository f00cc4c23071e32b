/**
 * The token verifier port: who is behind a request's bearer token. Adapter: JWT against a JWKS
 * (adapters/auth/jwtTokenVerifier.ts); the unit tests' double is
 * test/doubles/fixedTokenVerifier.ts.
 */

/** The caller behind a request. */
export interface Caller {
  userId: string;
}

export interface TokenVerifier {
  /** Resolves the caller of a bearer token, or throws `AuthError` (events/errors.ts). */
  verify(token: string): Promise<Caller>;
}
