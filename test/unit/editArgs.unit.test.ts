import { describe, expect, it } from "vitest";
import { EditApiError, ServiceUnreachableError, UploadError } from "../../client/editErrors.js";
import { EXIT, defaultOutputPath, exitCodeFor, parseEditArgs, progressBar, sniffPhotoType } from "../../cli/editArgs.js";

describe("edit's command line", () => {
  it("reads operation, file, output, params, and the service from flags", () => {
    const parsed = parseEditArgs(["upscale", "cat.jpg", "-o", "big.png", "--param", "scale=2", "-p", "x=1", "--api", "https://edits.example.com/", "--token", "t", "--json"], {});
    expect(parsed).toEqual({
      kind: "run",
      options: { operation: "upscale", file: "cat.jpg", output: "big.png", params: { scale: "2", x: "1" }, apiUrl: "https://edits.example.com", auth: { token: "t" }, projectId: "image-edit-local", direct: false, json: true, cache: true },
    });
  });

  it("reads the priority and the result cache opt-out", () => {
    expect(parseEditArgs(["upscale", "a.png", "--priority", "batch", "--no-cache"], {})).toMatchObject({ options: { priority: "batch", cache: false } });
    expect(parseEditArgs(["upscale", "a.png", "--priority=interactive", "--cache=false"], {})).toMatchObject({ options: { priority: "interactive", cache: false } });
    expect(parseEditArgs(["upscale", "a.png", "--cache=true"], {})).toMatchObject({ options: { cache: true } });
  });

  it("falls back to the environment, and a flag beats it", () => {
    const env = { EDIT_API_URL: "https://env.example", EDIT_TOKEN: "env-token", FIRESTORE_EMULATOR_HOST: "127.0.0.1:8085", EDIT_PROJECT_ID: "p" };
    const fromEnv = parseEditArgs(["upscale", "a.png"], env);
    expect(fromEnv).toMatchObject({ options: { apiUrl: "https://env.example", auth: { token: "env-token" }, firestoreEmulatorHost: "127.0.0.1:8085", projectId: "p" } });
    expect(parseEditArgs(["upscale", "a.png", "--api=http://127.0.0.1:9", "--token", "flag-token"], env)).toMatchObject({ options: { apiUrl: "http://127.0.0.1:9", auth: { token: "flag-token" } } });
    expect(parseEditArgs(["upscale", "a.png"], {})).toMatchObject({ options: { apiUrl: "http://127.0.0.1:8080", auth: undefined } });
  });

  it.each([
    [[], "give an operation and a file"],
    [["upscale"], "give an operation and a file"],
    [["upscale", "a.png", "b.png"], 'unexpected argument "b.png"'],
    [["upscale", "a.png", "--frobnicate"], "unknown option --frobnicate"],
    [["upscale", "a.png", "-o"], "-o needs a value"],
    [["upscale", "a.png", "--param", "scale"], "--param takes name=value"],
    [["upscale", "a.png", "--param", "=2"], "--param takes name=value"],
    [["upscale", "a.png", "--api", "ftp://x"], "--api must be an http(s) URL"],
    [["upscale", "a.png", "--user", "u"], "unknown option --user"],
    [["upscale", "a.png", "--firestore-emulator", "nohost"], "host:port"],
    [["Up Scale", "a.png"], "not an operation name"],
    [["upscale", "a.png", "--priority", "urgent"], "--priority takes interactive or batch"],
    [["upscale", "a.png", "--cache=no"], "--cache takes true or false"],
    [["upscale", "a.png", "--webhook", "hooks.example.com"], "--webhook must be an https URL"],
    [["upscale", "a.png", "--webhook-events", "running"], "--webhook-events needs --webhook"],
  ])("refuses %j: %s", (argv, message) => {
    const parsed = parseEditArgs(argv, {});
    expect(parsed.kind).toBe("usage_error");
    expect(parsed.kind === "usage_error" && parsed.message).toContain(message);
  });

  it("takes a webhook and its events", () => {
    expect(parseEditArgs(["upscale", "a.png", "--webhook", "https://hooks.example.com/e"], {})).toMatchObject({ options: { webhook: { url: "https://hooks.example.com/e" } } });
    expect(parseEditArgs(["upscale", "a.png", "--webhook=https://hooks.example.com/e", "--webhook-events", "running, succeeded"], {})).toMatchObject({
      options: { webhook: { url: "https://hooks.example.com/e", events: ["running", "succeeded"] } },
    });
    expect(parseEditArgs(["upscale", "a.png"], {})).not.toHaveProperty("options.webhook");
  });

  it("reads login: the local stack's Auth emulator by default, a deployed project's Firebase Auth with an API key", () => {
    expect(parseEditArgs(["login", "--email", "a@example.com"], { EDIT_PASSWORD: "pw" })).toEqual({
      kind: "login",
      options: { email: "a@example.com", password: "pw", apiKey: "local-emulator-key", emulatorHost: "127.0.0.1:9099" },
    });
    expect(parseEditArgs(["login"], { EDIT_EMAIL: "b@example.com", EDIT_API_KEY: "AIza-key" })).toEqual({ kind: "login", options: { email: "b@example.com", apiKey: "AIza-key" } });
    expect(parseEditArgs(["login", "--email=c@example.com"], { FIREBASE_AUTH_EMULATOR_HOST: "127.0.0.1:9200" })).toMatchObject({ options: { emulatorHost: "127.0.0.1:9200" } });
    expect(parseEditArgs(["logout"], {})).toEqual({ kind: "logout" });
  });

  it.each([
    [["login"], "login needs --email"],
    [["login", "--email", "a@example.com", "extra"], 'unexpected argument "extra"'],
    [["login", "--email", "a@example.com", "--auth-emulator", "nohost"], "host:port"],
  ])("refuses login %j: %s", (argv, message) => {
    const parsed = parseEditArgs(argv, {});
    expect(parsed.kind === "usage_error" && parsed.message).toContain(message);
  });

  it("asks for help with -h", () => {
    expect(parseEditArgs(["upscale", "-h"], {})).toEqual({ kind: "help" });
  });

  it("knows photos by their bytes, not their names", () => {
    expect(sniffPhotoType(new Uint8Array([0xff, 0xd8, 0xff, 0xe0]))).toBe("image/jpeg");
    expect(sniffPhotoType(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0]))).toBe("image/png");
    expect(sniffPhotoType(new TextEncoder().encode("RIFF\0\0\0\0WEBPVP8 "))).toBe("image/webp");
    expect(sniffPhotoType(new TextEncoder().encode("GIF89a"))).toBeUndefined();
    expect(sniffPhotoType(new Uint8Array())).toBeUndefined();
  });

  it("names the output beside the input", () => {
    expect(defaultOutputPath("photos/cat.jpg", "upscale", "image/png")).toBe("photos/cat.upscale.png");
    expect(defaultOutputPath("./.hidden/noext", "comic", "image/jpeg")).toBe("./.hidden/noext.comic.jpg");
  });

  it("draws a progress bar", () => {
    expect(progressBar(0, 4, 8)).toBe("[--------]   0%");
    expect(progressBar(1, 4, 8)).toBe("[##------]  25%");
    expect(progressBar(4, 4, 8)).toBe("[########] 100%");
    expect(progressBar(5, 0, 8)).toBe("[########] 100%");
  });

  it.each([
    [new ServiceUnreachableError("http://x", "ECONNREFUSED"), EXIT.unreachable],
    [new EditApiError(503, "unavailable", "storage"), EXIT.unreachable],
    [new EditApiError(401, "unauthenticated", "expired"), EXIT.unauthenticated],
    [new EditApiError(400, "invalid_param", "scale"), EXIT.usage],
    [new EditApiError(415, "unsupported_media_type", "gif"), EXIT.usage],
    [new UploadError(0, "dropped"), EXIT.unreachable],
    [new UploadError(403, "expired URL"), EXIT.usage],
    [Object.assign(new Error("denied"), { code: "permission-denied" }), EXIT.unauthenticated],
  ])("exit code for %s is %i", (error, code) => {
    expect(exitCodeFor(error)).toBe(code);
  });
});

describe("edit's output format and wait", () => {
  it("reads --format, --quality, --background and --wait, which implies the direct flow", () => {
    expect(parseEditArgs(["remove_background", "a.jpg", "--format", "jpeg", "--quality=70", "--background", "#ffffff", "--wait", "30"], {})).toMatchObject({
      kind: "run",
      options: { format: { format: "jpeg", quality: 70, background: "#ffffff" }, waitSeconds: 30, direct: true },
    });
    expect(parseEditArgs(["upscale", "a.jpg"], {})).toMatchObject({ options: { direct: false } });
  });

  it.each([
    [["--format", "gif"], /--format is png, jpeg or webp/],
    [["--format", "jpeg", "--quality", "0"], /--quality is a whole number from 1 to 100/],
    [["--quality", "80"], /go with --format/],
    [["--format", "png", "--background", "white"], /--background is a colour #rrggbb/],
    [["--wait", "61"], /--wait is a whole number of seconds from 1 to 60/],
  ])("refuses %j", (flags, message) => {
    const parsed = parseEditArgs(["upscale", "a.jpg", ...flags], {});
    expect(parsed.kind === "usage_error" ? parsed.message : "").toMatch(message);
  });

  it("sniffs AVIF and HEIC by their brands", () => {
    const ftyp = (major: string, ...compatible: string[]) => {
      const brands = [major, "\0\0\0\0", ...compatible].join("");
      const size = 8 + brands.length;
      return new Uint8Array([0, 0, 0, size, ...Buffer.from("ftyp"), ...Buffer.from(brands, "latin1")]);
    };
    expect(sniffPhotoType(ftyp("avif", "mif1", "miaf"))).toBe("image/avif");
    expect(sniffPhotoType(ftyp("mif1", "avif"))).toBe("image/avif");
    expect(sniffPhotoType(ftyp("heic", "mif1", "heic"))).toBe("image/heic");
    expect(defaultOutputPath("dir/cat.heic", "upscale", "image/webp")).toBe("dir/cat.upscale.webp");
  });
});
