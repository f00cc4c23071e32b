/**
 * The token verifier port: who is behind a request's bearer token. Adapter: Firebase Auth ID
 * tokens through firebase-admin (adapters/auth/firebaseTokenVerifier.ts); the unit tests' double
 * is test/doubles/fixedTokenVerifier.ts.
 */

/** The caller behind a request. */
export interface Caller {
  userId: string;
}

export interface VerifyOptions {
  /**
   * Also ask the identity service whether the token was revoked or the account disabled (a
   * network call): for requests where a stale session must not act, such as cancelling a job.
   */
  checkRevoked?: boolean;
}

export interface TokenVerifier {
  /** Resolves the caller of a bearer token, or throws `AuthError` (events/errors.ts). */
  verify(token: string, options?: VerifyOptions): Promise<Caller>;
}
