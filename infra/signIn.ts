/**
 * How people sign in: Firebase Auth on Identity Platform, with the providers the web app offers.
 * - Email and password (the app's sign-up and sign-in form, and `edit login`).
 * - Anonymous ("try it without an account"): a guest's edits stay theirs when they link an email
 *   later. Guests that never do are deleted by Identity Platform after 30 days, so that the user
 *   list does not grow with every visit.
 * - Google, when the stack names its OAuth client (`googleSignInClientId` and the secret
 *   `googleSignInClientSecret`): Google holds the client's consent screen, which cannot be made
 *   from here.
 * The authorized domains are the app's origins (`corsOrigins`) and Firebase Hosting's own.
 */
import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";
import type { InfraConfig } from "./config.js";

export class SignIn extends pulumi.ComponentResource {
  readonly config: gcp.identityplatform.Config;
  /** The sign-in providers this stack turns on, in Firebase's names. */
  readonly providers: string[];

  constructor(name: string, args: { config: InfraConfig }, opts?: pulumi.ComponentResourceOptions) {
    super("image-edit:auth:SignIn", name, {}, opts);
    const { config } = args;
    const project = config.project;
    const appDomains = config.corsOrigins.map((origin) => new URL(origin).hostname);
    this.config = new gcp.identityplatform.Config(
      "sign-in",
      {
        project,
        signIn: {
          email: { enabled: true, passwordRequired: true },
          anonymous: { enabled: true },
          allowDuplicateEmails: false,
        },
        autodeleteAnonymousUsers: true,
        authorizedDomains: [...new Set([...appDomains, `${project}.firebaseapp.com`, `${project}.web.app`])],
      },
      { parent: this },
    );
    this.providers = ["password", "anonymous"];
    if (config.googleSignIn) {
      new gcp.identityplatform.DefaultSupportedIdpConfig(
        "google-sign-in",
        { project, idpId: "google.com", enabled: true, clientId: config.googleSignIn.clientId, clientSecret: config.googleSignIn.clientSecret },
        { parent: this, dependsOn: [this.config] },
      );
      this.providers.push("google.com");
    }
    this.registerOutputs({ providers: this.providers });
  }
}
