// Drives the abota-server web UI in Debian's chromium (headless) with
// Playwright: log in, upload a bundle, assign it to a device, watch the
// action go to success, save screenshots.
//   node ui.mjs URL USER PASSWORD BUNDLE DEVICE SCREENSHOT_PREFIX
import { chromium } from "playwright-core";

const [url, user, password, bundle, device, shot] = process.argv.slice(2);
const step = (m) => console.log("step: " + m);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
  page.on("pageerror", (e) => { console.log("page error: " + e); process.exitCode = 3; });
  await page.goto(url);
  step("login");
  await page.fill("#login-user", user);
  await page.fill("#login-password", "wrong-password");
  await page.click("#login-submit");
  await page.waitForSelector("#login-error:has-text('wrong user or password')");
  await page.fill("#login-password", password);
  await page.click("#login-submit");
  await page.waitForSelector("#devices-view:not([hidden])");
  await page.waitForSelector(`#devices tr[data-id="${device}"]`);

  step("upload");
  await page.click("nav a[data-view=bundles]");
  await page.setInputFiles("#upload-file", bundle);
  await page.click("#upload-btn");
  const msg = page.locator("#upload-msg");
  await msg.filter({ hasText: /Verified|Refused/ }).waitFor({ timeout: 60000 });
  const text = await msg.textContent();
  console.log("upload: " + text);
  if (!text.startsWith("Verified")) throw new Error("upload not verified: " + text);
  await page.waitForSelector("#bundles tbody tr");

  step("assign");
  await page.click("nav a[data-view=devices]");
  const row = page.locator(`#devices tr[data-id="${device}"]`);
  await row.locator("input.pick").check();
  await page.selectOption("#assign-ds", { index: 0 });
  await page.click("#assign-btn");
  await page.locator("#assign-msg").filter({ hasText: "Rollout" }).waitFor();
  console.log("assign: " + await page.locator("#assign-msg").textContent());

  step("follow");
  await row.click();
  await page.locator("#device-detail .action-status").first().filter({ hasText: "finished" })
    .waitFor({ timeout: 60000 });
  const history = await page.locator("#device-detail .history").first().textContent();
  console.log("history: " + history);
  await page.screenshot({ path: shot + "-desktop.png", fullPage: true });

  step("phone");
  await page.setViewportSize({ width: 390, height: 844 });
  await page.reload();
  await page.waitForSelector(`#devices tr[data-id="${device}"]`);
  const w = await page.evaluate(() => document.documentElement.scrollWidth);
  console.log("phone width: " + w);
  if (w > 390) throw new Error("page wider than a phone screen: " + w);
  await page.screenshot({ path: shot + "-phone.png", fullPage: true });
  console.log("done");
} finally {
  await browser.close();
}
