/**
 * Signing in, with the Firebase Auth SDK: an email and a password (sign up or sign in), or
 * "try it without an account" (anonymous sign-in), upgraded later by linking an email and a
 * password to the same user, so that the edits made as a guest stay theirs. The account line
 * shows who is signed in, with "Sign out". Locally the SDK talks to the Auth emulator
 * (`connectAuthEmulator`); in production to the project's Firebase Auth, with whatever providers
 * the operator enabled (infra/identity.ts).
 *
 * The API gets `user.getIdToken()` before every request: the SDK refreshes the token when it is
 * near its end, so a long upload never carries a stale one. A session that cannot be refreshed
 * (account disabled, password changed elsewhere) ends in the sign-in screen with a message.
 */
import type { EditClient } from "../../client/editClient.js";
import { $, clearProblem, showProblemText } from "./page.js";

export interface WebConfig {
  apiUrl: string;
  projectId: string;
  /** The Firebase web API key. */
  apiKey: string;
  /** Production: the Firebase Auth domain (`<project>.firebaseapp.com`). */
  authDomain?: string;
  /** Local stack only: host:port of the Firestore emulator. */
  firestoreEmulatorHost?: string;
  /** Local stack only: the Auth emulator's URL. */
  authEmulatorUrl?: string;
}

export interface SignInScreen {
  /** Waits for the SDK to restore a saved session; shows the editor if there is one, else the sign-in form. */
  restore(): Promise<void>;
}

type FirebaseAuthModule = typeof import("firebase/auth");

export function createSignInScreen(
  config: () => WebConfig,
  events: { onSignedIn(client: EditClient): Promise<void>; onSignedOut(): void },
): SignInScreen {
  let session: Promise<{ sdk: FirebaseAuthModule; auth: import("firebase/auth").Auth; firestore: import("firebase/firestore").Firestore }> | undefined;
  let shownUser: string | undefined;

  /** The Firebase app, Auth and Firestore, made once, after the first paint. */
  function firebase() {
    session ??= (async () => {
      const [{ initializeApp }, sdk, { getFirestore, connectFirestoreEmulator }] = await Promise.all([import("firebase/app"), import("firebase/auth"), import("firebase/firestore")]);
      const { apiKey, projectId, authDomain, authEmulatorUrl, firestoreEmulatorHost } = config();
      const app = initializeApp({ apiKey, projectId, ...(authDomain ? { authDomain } : {}) });
      const auth = sdk.getAuth(app);
      if (authEmulatorUrl) sdk.connectAuthEmulator(auth, authEmulatorUrl, { disableWarnings: true });
      const firestore = getFirestore(app);
      if (firestoreEmulatorHost) {
        const separator = firestoreEmulatorHost.lastIndexOf(":");
        connectFirestoreEmulator(firestore, firestoreEmulatorHost.slice(0, separator), Number(firestoreEmulatorHost.slice(separator + 1)));
      }
      return { sdk, auth, firestore };
    })();
    return session;
  }

  function show(message?: string): void {
    shownUser = undefined;
    $("signin").hidden = false;
    for (const id of ["editor", "job", "history", "upgrade"]) $(id).hidden = true;
    $("account").textContent = "";
    if (message) showProblemText(message);
    $<HTMLInputElement>("email").focus();
  }

  async function signedIn(user: import("firebase/auth").User): Promise<void> {
    const { sdk, auth, firestore } = await firebase();
    const { createEditClient } = await import("../../client/editClient.js");
    const client = createEditClient({
      apiUrl: config().apiUrl,
      firestore,
      getToken: async () => {
        const current = auth.currentUser;
        if (!current) throw new Error("signed out");
        try {
          return await current.getIdToken();
        } catch (error) {
          await sdk.signOut(auth);
          show("Your session has ended. Please sign in again.");
          throw error;
        }
      },
    });
    shownUser = user.uid;
    $("signin").hidden = true;
    $("editor").hidden = false;
    $("history").hidden = false;
    showAccount(user);
    await events.onSignedIn(client);
  }

  function showAccount(user: import("firebase/auth").User): void {
    const account = $("account");
    const name = Object.assign(document.createElement("span"), { id: "account-name", textContent: user.isAnonymous ? "Guest" : (user.email ?? user.uid) });
    account.replaceChildren(name);
    if (user.isAnonymous) {
      const keep = Object.assign(document.createElement("button"), { type: "button", id: "keep-account", textContent: "Keep my edits", className: "link" });
      keep.addEventListener("click", () => {
        $("upgrade").hidden = false;
        $<HTMLInputElement>("upgrade-email").focus();
      });
      account.append(keep);
    }
    const out = Object.assign(document.createElement("button"), { type: "button", id: "sign-out", textContent: "Sign out", className: "link" });
    out.addEventListener("click", () => {
      void firebase().then(({ sdk, auth }) => sdk.signOut(auth));
    });
    account.append(out);
  }

  /** Runs a sign-in action, showing its failure in words. */
  function attempt(what: string, action: () => Promise<unknown>): void {
    clearProblem();
    void action().catch((error: unknown) => showProblemText(`Could not ${what}: ${authMessage(error)}`));
  }

  const credentials = () => ({ email: $<HTMLInputElement>("email").value.trim(), password: $<HTMLInputElement>("password").value });
  $("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const { email, password } = credentials();
    attempt("sign in", async () => {
      const { sdk, auth } = await firebase();
      await sdk.signInWithEmailAndPassword(auth, email, password);
    });
  });
  $("signup").addEventListener("click", () => {
    const form = $<HTMLFormElement>("signin-form");
    if (!form.reportValidity()) return;
    const { email, password } = credentials();
    attempt("create the account", async () => {
      const { sdk, auth } = await firebase();
      await sdk.createUserWithEmailAndPassword(auth, email, password);
    });
  });
  $("anonymous").addEventListener("click", () =>
    attempt("start without an account", async () => {
      const { sdk, auth } = await firebase();
      await sdk.signInAnonymously(auth);
    }),
  );
  $("upgrade-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const email = $<HTMLInputElement>("upgrade-email").value.trim();
    const password = $<HTMLInputElement>("upgrade-password").value;
    attempt("save the account", async () => {
      const { sdk, auth } = await firebase();
      if (!auth.currentUser) throw new Error("signed out");
      // The same user (uid) gains an email and a password: the guest's edits stay theirs.
      const { user } = await sdk.linkWithCredential(auth.currentUser, sdk.EmailAuthProvider.credential(email, password));
      $("upgrade").hidden = true;
      showAccount(user);
    });
  });

  return {
    async restore() {
      const { sdk, auth } = await firebase();
      await auth.authStateReady();
      sdk.onAuthStateChanged(auth, (user) => {
        if (user && user.uid !== shownUser) {
          void signedIn(user).catch((error: unknown) => showProblemText(`Could not sign in: ${authMessage(error)}`));
        } else if (!user && shownUser !== undefined) {
          events.onSignedOut();
          show();
        }
      });
      if (!auth.currentUser) show();
    },
  };
}

/** Firebase Auth's error codes, in words. */
function authMessage(error: unknown): string {
  const code = (error as { code?: string }).code ?? "";
  const words: Record<string, string> = {
    "auth/invalid-credential": "the email or the password is wrong",
    "auth/wrong-password": "the email or the password is wrong",
    "auth/user-not-found": "the email or the password is wrong",
    "auth/email-already-in-use": "an account with this email exists already; sign in instead",
    "auth/credential-already-in-use": "an account with this email exists already",
    "auth/weak-password": "the password needs at least 6 characters",
    "auth/invalid-email": "the email address is not valid",
    "auth/user-disabled": "this account is disabled",
    "auth/network-request-failed": "the sign-in service could not be reached",
    "auth/too-many-requests": "too many attempts; wait a moment",
  };
  return words[code] ?? (error instanceof Error ? error.message : String(error));
}
