/**
 * The web app in Debian's Chromium (playwright-core, no browser download), served by the local
 * stack: a person signs up (Firebase Auth, against the Auth emulator), drops in a real photo, chooses the edit, uploads, and sees
 * `succeeded` arrive through the Firestore listener without reloading; the result is shown in the
 * before/after slider, and the past-edits list shows the job's events. Screenshots, at phone and
 * desktop size, are saved under .local/screenshots/. Accounts keep their edits to themselves: a
 * guest's edit stays theirs when they create an account by linking, and another account sees none.
 */
import { randomUUID } from "node:crypto";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { LOCAL_DIR } from "../../local/stack/paths.js";
import { ensurePhotos } from "../../local/bench/photos.js";

const CHROMIUM = "/usr/bin/chromium";
const stack = inject("stack");
const shots = join(LOCAL_DIR, "screenshots");
let browser: Browser;
let photo: string;
let photoSize: { width: number; height: number };

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)`);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
  mkdirSync(shots, { recursive: true });
  mkdirSync(join(LOCAL_DIR, "tmp"), { recursive: true });
  photo = join(LOCAL_DIR, "tmp", "web-coffee.jpg");
  const bytes = await sharp(join(await ensurePhotos(), "coffee.png")).resize(200).jpeg({ quality: 90 }).toBuffer();
  writeFileSync(photo, bytes);
  const meta = await sharp(bytes).metadata();
  photoSize = { width: meta.width as number, height: meta.height as number };
});

afterAll(async () => {
  await browser?.close();
});

const PASSWORD = "correct horse battery";

/** Signs a new account up through the form, with an email made from `name`. */
async function signIn(page: Page, name: string): Promise<string> {
  const email = `${name}-${randomUUID().slice(0, 8)}@example.com`;
  await page.goto(stack.webUrl);
  await page.fill("#email", email);
  await page.fill("#password", PASSWORD);
  await page.click("#signup");
  await page.waitForSelector("#operations input[value=upscale]:checked");
  return email;
}

async function signOut(page: Page): Promise<void> {
  await page.click("#sign-out");
  await page.waitForSelector("#signin:not([hidden])");
}

/** The past-edits list once loaded: the summaries of its jobs. */
async function pastEdits(page: Page): Promise<string[]> {
  await page.waitForSelector("#jobs details, #jobs li.hint");
  return page.$$eval("#jobs details summary", (items) => items.map((item) => item.textContent ?? ""));
}

describe("the web app in Chromium", () => {
  it("takes a photo from pick to a displayed result, live, on a phone-sized screen", async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    const page = await context.newPage();
    const consoleErrors: string[] = [];
    page.on("console", (message) => message.type() === "error" && consoleErrors.push(message.text()));
    page.on("pageerror", (error) => consoleErrors.push(error.message));
    let navigations = 0;
    page.on("framenavigated", (frame) => frame === page.mainFrame() && navigations++);

    await signIn(page, `web-${Date.now()}`);
    // The parameter comes from GET /v1/models, with its explanation.
    await expect(page.textContent("#params")).resolves.toContain("How many times larger each side becomes.");
    await page.setInputFiles("#file", photo);
    await page.selectOption("#param-scale", "2");
    const loadsBefore = navigations;
    await page.click("#start");

    await page.waitForSelector('#status[data-status="succeeded"]', { timeout: 240_000 });
    expect(navigations).toBe(loadsBefore);
    expect(await page.$eval("#upload-progress", (bar) => (bar as HTMLProgressElement).value)).toBe(1);
    await expect(page.textContent("#status-words")).resolves.toBe("Done.");
    expect(await page.isHidden("#cancel")).toBe(true);
    expect(await page.isHidden("#problem")).toBe(true);

    // The result image is displayed, at the upscaled size.
    await page.waitForFunction(() => {
      const image = document.querySelector<HTMLImageElement>("#result-image");
      return !!image && image.complete && image.naturalWidth > 0 && !document.querySelector("#compare")?.hasAttribute("hidden");
    });
    const natural = await page.$eval("#result-image", (image) => [(image as HTMLImageElement).naturalWidth, (image as HTMLImageElement).naturalHeight]);
    expect(natural).toEqual([photoSize.width * 2, photoSize.height * 2]);
    await expect(page.textContent("#result-size")).resolves.toContain(`${photoSize.width * 2} × ${photoSize.height * 2} px`);
    expect(await page.isVisible("#result-image")).toBe(true);
    // Nothing sticks out sideways on a phone.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);

    // The slider moves the split between before and after.
    await page.fill("#compare-slider", "20");
    await expect(page.$eval("#result-image", (image) => (image as HTMLElement).style.clipPath)).resolves.toBe("inset(0px 0px 0px 20%)");

    // The download is the result itself.
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download")]);
    const saved = join(LOCAL_DIR, "tmp", "web-download.png");
    await download.saveAs(saved);
    expect(await sharp(saved).metadata()).toMatchObject({ format: "png", width: photoSize.width * 2 });

    // The past edits list has it, with its event history.
    await page.waitForSelector("#jobs details");
    await page.click("#jobs details:first-child summary");
    await page.waitForSelector("#jobs details:first-child .events li");
    const history = await page.textContent("#jobs details:first-child .events");
    for (const type of ["EditRequested", "ImageUploaded", "EditQueued", "EditStarted", "EditSucceeded"]) expect(history).toContain(type);

    await page.screenshot({ path: join(shots, "web-phone.png"), fullPage: true });
    expect(consoleErrors).toEqual([]);
    await context.close();
  });

  it("keeps a guest's edit when they create an account, and shows it to no other account", async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    await page.goto(stack.webUrl);
    // A guest first (anonymous sign-in), who runs an edit.
    await page.click("#anonymous");
    await page.waitForSelector("#operations input[value=upscale]:checked");
    await expect(page.textContent("#account-name")).resolves.toBe("Guest");
    await page.setInputFiles("#file", photo);
    await page.selectOption("#param-scale", "2");
    await page.click("#start");
    await page.waitForSelector('#status[data-status="succeeded"]', { timeout: 240_000 });
    await page.waitForSelector("#jobs details");
    const guestEdits = await pastEdits(page);
    expect(guestEdits).toHaveLength(1);

    // The guest keeps their edits: an email and a password linked to the same user.
    const email = `guest-${randomUUID().slice(0, 8)}@example.com`;
    await page.click("#keep-account");
    await page.fill("#upgrade-email", email);
    await page.fill("#upgrade-password", PASSWORD);
    await page.click("#upgrade-form button[type=submit]");
    await page.waitForFunction((expected) => document.querySelector("#account-name")?.textContent === expected, email);
    await signOut(page);

    // Another person signs up on the same browser: none of the first one's edits.
    await page.fill("#email", `other-${randomUUID().slice(0, 8)}@example.com`);
    await page.fill("#password", PASSWORD);
    await page.click("#signup");
    await page.waitForSelector("#operations input[value=upscale]:checked");
    expect(await pastEdits(page)).toEqual([]);
    await signOut(page);

    // The first person signs in again with the account they made, and finds the guest's edit.
    await page.fill("#email", email);
    await page.fill("#password", PASSWORD);
    await page.click("#signin-button");
    await page.waitForFunction((expected) => document.querySelector("#account-name")?.textContent === expected, email);
    await page.waitForSelector("#jobs details");
    expect(await pastEdits(page)).toEqual(guestEdits);

    // A wrong password is refused in words.
    await signOut(page);
    await page.fill("#email", email);
    await page.fill("#password", "not the password");
    await page.click("#signin-button");
    await expect(page.waitForSelector("#problem:not([hidden])").then((problem) => problem.textContent())).resolves.toContain("the email or the password is wrong");
    await context.close();
  });

  it("cancels a running edit, and shows it canceled live", async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const page = await context.newPage();
    await signIn(page, `cancel-${Date.now()}`);
    // The largest photo at ×4 keeps the worker busy for a few seconds: time to cancel.
    await page.setInputFiles("#file", join(await ensurePhotos(), "astronaut.png"));
    await page.click("#start");
    await page.waitForSelector('#status[data-status="running"]', { timeout: 120_000 });
    await page.click("#cancel");
    await page.waitForSelector('#status[data-status="canceled"], #status[data-status="succeeded"]', { timeout: 120_000 });
    const status = await page.getAttribute("#status", "data-status");
    if (status === "canceled") {
      await expect(page.textContent("#status-words")).resolves.toBe("Canceled.");
      expect(await page.isHidden("#compare")).toBe(true);
    } else {
      // The worker finished first: the person is told why the cancel did not happen.
      await expect(page.textContent("#problem")).resolves.toContain("This cannot be done now: the edit has already succeeded");
    }
    expect(await page.isHidden("#cancel")).toBe(true);
    await context.close();
  });

  it("explains a file that is not a photo in words, and looks right at desktop size", async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    await signIn(page, `desk-${Date.now()}`);
    await page.setInputFiles("#file", { name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("not a photo") });
    await expect(page.textContent("#problem")).resolves.toBe("“notes.txt” is not a photo the service can read. Please pick a JPEG, PNG, WebP or AVIF image.");
    expect(await page.isDisabled("#start")).toBe(true);
    await page.setInputFiles("#file", photo);
    expect(await page.isHidden("#problem")).toBe(true);
    expect(await page.isEnabled("#start")).toBe(true);
    await page.screenshot({ path: join(shots, "web-desktop.png"), fullPage: true });
    await context.close();
  });
});
