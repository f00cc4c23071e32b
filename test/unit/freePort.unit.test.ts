/**
 * freePort picks loopback ports below the kernel's ephemeral range, so that no client connection
 * or bind to port 0 can take one between the pick and the server's bind, and never hands out a
 * port twice in a row.
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { freePort } from "../../local/stack/processes.js";

describe("freePort", () => {
  it("gives distinct ports below the ephemeral range that a server can bind", async () => {
    const [ephemeralLow] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number) as [number];
    const ports: number[] = [];
    for (let index = 0; index < 60; index += 1) ports.push(await freePort());
    expect(new Set(ports).size).toBe(ports.length);
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(1024);
      expect(port).toBeLessThan(ephemeralLow);
    }
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(ports[0], "127.0.0.1", () => resolve());
    });
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

});
