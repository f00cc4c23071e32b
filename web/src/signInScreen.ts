/**
 * The sign-in screen: a name, a token from the local issuer kept for the browser session, and
 * the signed-in account line with its "Sign out" button. Signing in connects the typed client
 * and the Firestore listener for that user.
 */
import type { EditClient } from "../../client/editClient.js";
import { $, clearProblem, showProblemText } from "./page.js";

export interface WebConfig {
  apiUrl: string;
  projectId: string;
  firestoreEmulatorHost: string;
}

const TOKEN_KEY = "photo-edits-token";

export interface SignInScreen {
  /** Signs in again with the session's token while it has a minute left; otherwise asks for a name. */
  restore(): Promise<void>;
}

export function createSignInScreen(
  config: () => WebConfig,
  events: { onSignedIn(client: EditClient): Promise<void>; onSignedOut(): void },
): SignInScreen {
  let closeFirestore: (() => Promise<void>) | undefined;

  function show(): void {
    $("signin").hidden = false;
    for (const id of ["editor", "job", "history"]) $(id).hidden = true;
    $("account").textContent = "";
    $<HTMLInputElement>("user-name").focus();
  }

  async function signedIn(token: string): Promise<void> {
    const { apiUrl, projectId, firestoreEmulatorHost } = config();
    // The client and the Firebase SDK load after the first paint; the sign-in screen needs neither.
    const [{ createEditClient }, { connectEmulatorFirestore, tokenSubject }] = await Promise.all([
      import("../../client/editClient.js"),
      import("../../client/firestoreConnection.js"),
    ]);
    const userId = tokenSubject(token);
    await closeFirestore?.();
    const connection = connectEmulatorFirestore({ projectId, emulatorHost: firestoreEmulatorHost, userId });
    closeFirestore = connection.close;
    const client = createEditClient({
      apiUrl,
      firestore: connection.firestore,
      getToken: () => {
        const current = sessionStorage.getItem(TOKEN_KEY);
        if (!current || tokenSeconds(current) <= 0) {
          show();
          throw new Error("signed out");
        }
        return current;
      },
    });
    $("signin").hidden = true;
    $("editor").hidden = false;
    $("history").hidden = false;
    const account = $("account");
    account.replaceChildren(Object.assign(document.createElement("span"), { textContent: userId }));
    const out = Object.assign(document.createElement("button"), { type: "button", textContent: "Sign out", className: "link" });
    out.addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      events.onSignedOut();
      show();
    });
    account.append(out);
    await events.onSignedIn(client);
  }

  $("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    clearProblem();
    const userId = $<HTMLInputElement>("user-name").value.trim();
    void (async () => {
      try {
        const response = await fetch("/local/token", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ userId }) });
        const body = (await response.json()) as { token?: string; error?: { message: string } };
        if (!body.token) throw new Error(body.error?.message ?? "sign-in failed");
        sessionStorage.setItem(TOKEN_KEY, body.token);
        await signedIn(body.token);
      } catch (error) {
        showProblemText(`Could not sign in: ${error instanceof Error ? error.message : String(error)}`);
      }
    })();
  });

  return {
    async restore() {
      const token = sessionStorage.getItem(TOKEN_KEY);
      if (token && tokenSeconds(token) > 60) await signedIn(token);
      else show();
    },
  };
}

/** Seconds until the token expires; 0 for one that cannot be read. */
function tokenSeconds(token: string): number {
  try {
    const payload = JSON.parse(atob(token.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/"))) as { exp?: number };
    return (payload.exp ?? 0) - Date.now() / 1000;
  } catch {
    return 0;
  }
}
