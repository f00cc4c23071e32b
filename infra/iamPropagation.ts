/**
 * A pause after IAM grants that Google services check on first use. Grants are eventually
 * consistent (Google documents up to 7 minutes, typically under two): Eventarc validates its
 * service agent when a trigger is created, and Cloud Build checks the build account when a build
 * starts, so on a fresh project the first `up` would fail there and a second one succeed.
 * A `sleep` through @pulumi/command (already used for the image builds) rather than another
 * provider: @pulumi/time is not published on npm, and the community time provider would add a
 * plugin for one sleep. It runs again only when the grants it waits for are replaced.
 */
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";

export function iamPropagationWait(
  name: string,
  args: { seconds: number; grants: pulumi.Resource[] },
  opts?: pulumi.CustomResourceOptions,
): command.local.Command {
  return new command.local.Command(
    name,
    {
      create: `sleep ${args.seconds}`,
      // Replaced (so waits again) when any grant it follows is replaced.
      triggers: args.grants.map((grant) => (grant as pulumi.CustomResource).id),
    },
    { ...opts, dependsOn: args.grants },
  );
}
