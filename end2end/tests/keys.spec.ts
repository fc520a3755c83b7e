// "API keys" on the Settings page in Chromium, against the real server: make a key, its secret
// shown once with a working Copy button, the list with "never used", gone from the page after a
// reload, a duplicate name refused in words, Revoke with its inline confirmation; and the same
// keys seen from the terminal.
import { expect, type Page } from "@playwright/test";
import { execFileSync } from "node:child_process";
import { BIN, shot, signIn, test, useLocalbrain } from "./support";

const rig = useLocalbrain();

const card = (page: Page) => page.getByTestId("api-keys");
const row = (page: Page, name: string) => page.locator(`[data-testid=key-row][data-key="${name}"]`);
const KEY = /^lb-[0-9a-f]{64}$/;

async function makeKey(page: Page, name: string) {
  await card(page).getByTestId("key-name").fill(name);
  await card(page).getByRole("button", { name: "Make key" }).click();
}

test("a key is made, its secret shown once and copied, listed as never used, and revoked", async ({ page, context }) => {
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: rig.lb.base });
  await signIn(page, rig.lb.loginUrl);
  await expect(card(page)).toContainText("No keys yet.");

  await makeKey(page, "my editor");
  const secretField = card(page).getByTestId("new-key-secret");
  await expect(secretField).toHaveValue(KEY);
  const secret = await secretField.inputValue();
  await expect(card(page).getByTestId("new-key")).toContainText(
    `Copy it now: it will not be shown again. Programs send it as Authorization: Bearer … to ${rig.lb.base}/v1`,
  );
  await expect(card(page).getByTestId("key-name")).toHaveValue("");
  await expect(row(page, "my editor")).toContainText(secret.slice(0, 11) + "…");
  await expect(row(page, "my editor").getByTestId("key-when")).toHaveText("Made just now · never used");
  await expect(card(page)).not.toContainText("No keys yet.");

  await card(page).getByRole("button", { name: "Copy" }).click();
  await expect(card(page).getByTestId("copy-key")).toHaveText("Copied");
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(secret);

  await shot(page, "keys-desktop");
  await page.setViewportSize({ width: 360, height: 800 });
  await shot(page, "keys-360");
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  expect(overflow, "nothing sticks out at 360 px").toBeLessThanOrEqual(0);
  await page.setViewportSize({ width: 1280, height: 800 });

  // The terminal sees the same key, never its secret.
  const listed = execFileSync(BIN, ["--data-dir", rig.lb.dataDir, "key", "list", "admin"], { env: { ...process.env, DATABASE_URL: "" } }).toString();
  expect(listed).toContain("my editor");
  expect(listed).toContain("never");
  expect(listed).not.toContain(secret);

  // After a reload the secret is nowhere on the page; the key is still listed.
  await page.reload();
  await expect(row(page, "my editor")).toBeVisible();
  await expect(card(page).getByTestId("new-key")).toHaveCount(0);
  expect(await page.content()).not.toContain(secret.slice(11));

  // Revoke asks in the page first.
  await row(page, "my editor").getByRole("button", { name: "Revoke" }).click();
  const confirm = row(page, "my editor").getByTestId("confirm-revoke");
  await expect(confirm).toContainText("Revoke “my editor”? Programs using it stop working at once.");
  await confirm.getByRole("button", { name: "Keep it" }).click();
  await expect(confirm).toHaveCount(0);
  await row(page, "my editor").getByRole("button", { name: "Revoke" }).click();
  await row(page, "my editor").getByRole("button", { name: "Yes, revoke" }).click();
  await expect(row(page, "my editor")).toHaveCount(0);
  await expect(card(page)).toContainText("No keys yet.");
  await page.reload();
  await expect(card(page)).toContainText("No keys yet.");
});

test("an empty or duplicate name is refused in words next to the form", async ({ page }) => {
  await signIn(page, rig.lb.loginUrl);
  await makeKey(page, "   ");
  await expect(card(page).getByTestId("key-error")).toHaveText("give the key a name, such as the program that will use it");
  await expect(card(page).getByTestId("new-key")).toHaveCount(0);

  await makeKey(page, "scripts");
  await expect(card(page).getByTestId("new-key-secret")).toHaveValue(KEY);
  await expect(card(page).getByTestId("key-error")).toHaveCount(0);
  await makeKey(page, "scripts");
  await expect(card(page).getByTestId("key-error")).toHaveText(
    'you already have a key called "scripts": choose another name, or revoke that one first',
  );
  await expect(card(page).getByTestId("key-row")).toHaveCount(1);
  // Enter in the field makes a key too.
  await card(page).getByTestId("key-name").fill("laptop");
  await card(page).getByTestId("key-name").press("Enter");
  await expect(row(page, "laptop")).toBeVisible();
  await expect(card(page).getByTestId("key-error")).toHaveCount(0);
  await expect(card(page).getByTestId("new-key")).toContainText("Your new key “laptop”");
});
