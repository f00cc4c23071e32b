/**
 * A dedicated VPC for the cluster: VPC-native (alias IP) ranges, private nodes, and Cloud NAT so
 * that private nodes can still pull Triton's image from nvcr.io.
 */
import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";

import { stackName, type InfraConfig } from "./config.js";

/** Ranges sized for a small cluster: /20 nodes, /14 pods (110 per node), /20 services. */
export const networkRanges = {
  nodes: "10.10.0.0/20",
  pods: "10.20.0.0/14",
  services: "10.24.0.0/20",
  /** The control plane's peering range; any unused /28. */
  controlPlane: "172.16.0.0/28",
} as const;

export class Network extends pulumi.ComponentResource {
  readonly network: gcp.compute.Network;
  readonly subnetwork: gcp.compute.Subnetwork;
  readonly podsRangeName = "pods";
  readonly servicesRangeName = "services";

  constructor(
    name: string,
    args: { config: InfraConfig },
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("image-edit:infra:Network", name, {}, opts);
    const { config } = args;
    this.network = new gcp.compute.Network(
      "vpc",
      { name: stackName(config, "image-edit"), autoCreateSubnetworks: false },
      { parent: this },
    );
    this.subnetwork = new gcp.compute.Subnetwork(
      "nodes",
      {
        name: stackName(config, "image-edit-nodes"),
        region: config.region,
        network: this.network.id,
        ipCidrRange: networkRanges.nodes,
        // Private nodes reach Cloud Storage, Pub/Sub and Artifact Registry without the NAT.
        privateIpGoogleAccess: true,
        secondaryIpRanges: [
          { rangeName: this.podsRangeName, ipCidrRange: networkRanges.pods },
          { rangeName: this.servicesRangeName, ipCidrRange: networkRanges.services },
        ],
      },
      { parent: this },
    );
    const router = new gcp.compute.Router(
      "router",
      { name: stackName(config, "image-edit"), region: config.region, network: this.network.id },
      { parent: this },
    );
    new gcp.compute.RouterNat(
      "nat",
      {
        name: stackName(config, "image-edit"),
        router: router.name,
        region: config.region,
        natIpAllocateOption: "AUTO_ONLY",
        sourceSubnetworkIpRangesToNat: "ALL_SUBNETWORKS_ALL_IP_RANGES",
      },
      { parent: this },
    );
    this.registerOutputs({});
  }
}
