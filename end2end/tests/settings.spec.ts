import { test, expect } from "@playwright/test";

test("/ redirects to /settings, which renders the card and hydrates", async ({ page }) => {
  await page.goto("/");
  await expect(page).toHaveURL(/\/settings$/);
  await expect(page).toHaveTitle("Settings");
  await expect(page.getByRole("heading", { level: 1, name: "Settings" })).toBeVisible();
  await expect(page.getByRole("heading", { level: 2, name: "Local AI brain" })).toBeVisible();
  await expect(page.locator("main[data-hydrated=true]")).toBeAttached();
  await page.screenshot({ path: "screenshots/settings-shell.png", fullPage: true });
});

test("/settings is server-rendered: the card is there without JavaScript", async ({ browser }) => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto("/settings");
  await expect(page.getByRole("heading", { level: 2, name: "Local AI brain" })).toBeVisible();
  await expect(page.locator("main[data-hydrated=true]")).toHaveCount(0);
  await context.close();
});
