// Drives the connected-agents page in a real headless Chromium (playwright-core, the system's
// browser: no browser download). Used by tests/e2e/test_account_page_browser.py.
//
// Usage: node account_page.mjs <base URL> <email> <password> <agent name>
// Prints one JSON object: what the page showed before and after revoking the named agent.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [base, email, password, agentName] = process.argv.slice(2);
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const STEP_TIMEOUT_MS = 15000;
const profile = mkdtempSync(join(tmpdir(), "kit-chromium-"));

const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
  // The consent page's phone layout: 390 px wide.
  viewport: { width: 390, height: 844 },
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
context.setDefaultTimeout(STEP_TIMEOUT_MS);
const result = {};
try {
  const page = context.pages()[0] || (await context.newPage());
  await page.goto(`${base}/account/agents`);
  // The Cognito emulator's managed login.
  result.loginUrl = page.url().split("?")[0];
  await page.fill("#username", email);
  await page.fill("#password", password);
  await Promise.all([page.waitForURL(`${base}/account/agents`), page.click("button[type=submit]")]);
  result.heading = await page.textContent("h1");
  result.signedInAs = await page.textContent(".who");
  const agents = page.locator("#agents section");
  result.agentsBefore = await agents.allTextContents();
  result.overflowBefore = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  const cookies = await context.cookies(base);
  result.cookies = cookies.map((c) => ({ name: c.name, httpOnly: c.httpOnly, sameSite: c.sameSite }));
  const mine = agents.filter({ hasText: agentName });
  result.matching = await mine.count();
  await Promise.all([
    page.waitForURL(/notice=revoked$/),
    mine.first().getByRole("button", { name: "Revoke access" }).click(),
  ]);
  result.notice = await page.textContent("#notice");
  result.agentsAfter = await page.locator("#agents section").allTextContents();
  result.urlAfter = page.url();
} catch (error) {
  result.error = String(error && error.stack ? error.stack : error);
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(result) + "\n");
