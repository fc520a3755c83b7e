// "Models on this machine" in Chromium, against the real server: the list with a model
// installed, delete with its inline confirmation, delete refused while the model answers a chat,
// and "Check again" finding a damaged file, which a fresh download replaces.
import { expect, type Page } from "@playwright/test";
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sha256, shot, signIn, SMOL, SMOL_PATH, test, useLocalbrain } from "./support";

const rig = useLocalbrain({ bytesPerSecond: 20_000_000 });

const models = (page: Page) => page.getByTestId("models");
const row = (page: Page, id: string) => page.locator(`[data-testid=model-row][data-model="${id}"]`);

/** A screenshot at 1280x800 and at 360 px wide. */
async function shots(page: Page, name: string) {
  await shot(page, `${name}-desktop`);
  await page.setViewportSize({ width: 360, height: 800 });
  await shot(page, `${name}-360`);
  await page.setViewportSize({ width: 1280, height: 800 });
}

/** Downloads the recommended test model through the card. */
async function installThroughTheCard(page: Page) {
  await signIn(page, rig.lb.loginUrl);
  await page.getByRole("button", { name: "Download", exact: true }).click();
  await expect(page.getByTestId("status")).toContainText("is installed and ready", { timeout: 30_000 });
}

test("the list shows an installed model with its size, date, check and the disk line", async ({ page }) => {
  await signIn(page, rig.lb.loginUrl);
  await expect(models(page)).toContainText("No models yet");
  await page.getByRole("button", { name: "Download", exact: true }).click();
  await expect(page.getByTestId("status")).toContainText("is installed and ready", { timeout: 30_000 });
  // The card's finished download refreshes the list below it.
  await expect(row(page, "tiny-good")).toContainText("Tiny Good Model");
  await expect(row(page, "tiny-good")).toContainText("6 MB");
  await expect(row(page, "tiny-good")).toContainText(/installed \d{4}-\d\d-\d\d \d\d:\d\d UTC/);
  await expect(row(page, "tiny-good").getByTestId("model-check")).toHaveText("verified");
  await expect(page.getByTestId("disk-line")).toContainText(/^Models 6 MB · unfinished downloads 0 B · [\d.]+ GB free$/);
  await expect(page.getByTestId("leftovers-line")).toHaveText("No unfinished downloads.");
  await shots(page, "models-installed");
});

test("delete asks in the page first, then removes the file; the card offers Download again", async ({ page }) => {
  await installThroughTheCard(page);
  await expect(row(page, "tiny-good")).toBeVisible();
  await row(page, "tiny-good").getByRole("button", { name: "Delete" }).click();
  const confirm = row(page, "tiny-good").getByTestId("confirm-delete");
  await expect(confirm).toContainText("Delete Tiny Good Model (6 MB)? Every user of this machine loses it.");
  await shots(page, "models-confirm-delete");
  await confirm.getByRole("button", { name: "Keep it" }).click();
  await expect(confirm).toHaveCount(0);
  expect(rig.lb.installed("tiny-good")).toBeDefined();

  await row(page, "tiny-good").getByRole("button", { name: "Delete" }).click();
  await row(page, "tiny-good").getByRole("button", { name: "Yes, delete" }).click();
  await expect(row(page, "tiny-good")).toHaveCount(0);
  await expect(models(page)).toContainText("No models yet");
  expect(rig.lb.installed("tiny-good")).toBeUndefined();
  await expect(page.getByTestId("status")).toContainText("Tiny Good Model was removed from this machine.");
  await expect(page.getByTestId("removed")).toBeVisible();
  await shots(page, "models-deleted");
  // After a reload too (the download's row says so).
  await page.reload();
  await expect(page.getByTestId("status")).toContainText("was removed from this machine");
  await page.getByRole("button", { name: "Download again" }).click();
  await expect(page.getByTestId("status")).toContainText("is installed and ready", { timeout: 30_000 });
  await expect(row(page, "tiny-good")).toBeVisible();
});

test("delete is refused while the model is answering a chat", async ({ page }) => {
  mkdirSync(rig.lb.modelsDir, { recursive: true });
  copyFileSync(SMOL_PATH, join(rig.lb.modelsDir, `${SMOL}.gguf`));
  await signIn(page, rig.lb.loginUrl);
  await expect(row(page, SMOL).getByTestId("model-check")).toHaveText("not checked yet");
  await expect(row(page, SMOL)).toContainText("llama · 135M parameters · 8K context · Q4_1");
  const chat = page.getByTestId("chat");
  await chat.getByLabel("Message").fill("Write a very long story about a dragon.");
  await chat.getByRole("button", { name: "Send" }).click();
  await expect(chat.getByRole("button", { name: "Stop" })).toBeVisible();
  await expect.poll(async () => (await page.locator(".msg-assistant p").last().textContent())?.length ?? 0).toBeGreaterThan(0);
  await row(page, SMOL).getByRole("button", { name: "Delete" }).click();
  await row(page, SMOL).getByRole("button", { name: "Yes, delete" }).click();
  await expect(row(page, SMOL).getByTestId("model-note")).toContainText("is answering a chat right now");
  await expect(row(page, SMOL)).toBeVisible();
  await shots(page, "models-delete-refused");
  expect(existsSync(join(rig.lb.modelsDir, `${SMOL}.gguf`))).toBe(true);
  await chat.getByRole("button", { name: "Stop" }).click();
});

test("check again finds a damaged file and offers a fresh download", async ({ page }) => {
  mkdirSync(rig.lb.modelsDir, { recursive: true });
  const damaged = Buffer.from(rig.files.good);
  damaged[damaged.length >> 1] ^= 0xff;
  writeFileSync(join(rig.lb.modelsDir, "tiny-good.gguf"), damaged);
  await signIn(page, rig.lb.loginUrl);
  await expect(row(page, "tiny-good").getByTestId("model-check")).toHaveText("not checked yet");
  await row(page, "tiny-good").getByRole("button", { name: "Check again" }).click();
  await expect(row(page, "tiny-good").getByTestId("model-check")).toHaveText("damaged");
  await expect(row(page, "tiny-good").getByTestId("model-note")).toContainText("the file is damaged");
  await shots(page, "models-damaged");
  await row(page, "tiny-good").getByRole("button", { name: "Download again" }).click();
  await expect(page.getByTestId("status")).toContainText("is installed and ready", { timeout: 30_000 });
  expect(sha256(rig.lb.installed("tiny-good")!)).toBe(sha256(rig.files.good));
  await expect(row(page, "tiny-good").getByTestId("model-check")).toHaveText("verified");
});
