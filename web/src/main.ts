/**
 * The web app: sign in, pick a photo, choose an edit and its parameters, upload with progress,
 * watch the job live through a Firestore listener, cancel, compare before and after, download,
 * and look back over past edits with their event history. Everything goes through the typed
 * client in `client/`. Each screen is a module of its own; this file loads the configuration
 * and joins them.
 */
import "./style.css";
import type { EditClient } from "../../client/editClient.js";
import { createEditorScreen } from "./editorScreen.js";
import { createHistoryScreen } from "./historyScreen.js";
import { createJobScreen } from "./jobScreen.js";
import { showProblem } from "./page.js";
import { createSignInScreen, type WebConfig } from "./signInScreen.js";

let config: WebConfig | undefined;
let client: EditClient | undefined;
const signedInClient = () => client!;

const history = createHistoryScreen(signedInClient);
const editor = createEditorScreen(signedInClient, { onStart: (edit) => void job.start(edit) });
const job = createJobScreen(signedInClient, editor, { onEnded: () => void history.load() });
const signIn = createSignInScreen(() => config!, {
  async onSignedIn(signedIn) {
    client = signedIn;
    await Promise.all([editor.load(), history.load()]);
  },
  // Nothing of the person who left stays on the page for the next one.
  onSignedOut: () => {
    job.stopWatching();
    history.clear();
  },
});

async function start(): Promise<void> {
  try {
    const response = await fetch("/config.json");
    config = (await response.json()) as WebConfig;
  } catch (error) {
    showProblem(error);
    return;
  }
  await signIn.restore();
}

// Whatever slips through still reaches the person, in words.
window.addEventListener("unhandledrejection", (event) => showProblem(event.reason));

void start();
