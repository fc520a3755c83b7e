// "Find a model on Hugging Face" in Chromium, against the real server and a loopback hub (the
// model server's `hub`, serving the real model as test-org/SmolLM2-135M-Instruct-GGUF): search,
// the repo's quants with the pick marked, a download that installs and is then chatted with,
// and a hub that cannot be reached saying so while the catalog keeps working.
import { expect, type Page } from "@playwright/test";
import { HUB_REPO, shot, signIn, test, useLocalbrain } from "./support";

const rig = useLocalbrain({ bytesPerSecond: 200_000_000 });
const hub = (page: Page) => page.getByTestId("hub");
const HUB_ID = "hf--test-org--smollm2-135m-instruct-gguf--q4_1";

async function search(page: Page, words: string) {
  await hub(page).getByLabel("Search Hugging Face").fill(words);
  await hub(page).getByRole("button", { name: "Search" }).click();
}

test("search finds the repo, lists its quants with the pick, and a download installs it", async ({ page }) => {
  await signIn(page, rig.lb.loginUrl);
  await search(page, "smollm2");
  const results = page.getByTestId("hub-results");
  await expect(results).toContainText(HUB_REPO);
  await expect(results).toContainText("123.5K downloads · 789 likes · updated 2026-11-30");
  await hub(page).scrollIntoViewIfNeeded();
  await shot(page, "hub-results");

  await results.getByRole("button", { name: HUB_REPO }).click();
  const quants = page.getByTestId("hub-quants");
  await expect(quants).toContainText("license apache-2.0");
  const q4 = quants.locator("tr", { hasText: "Q4_1" });
  await expect(q4).toContainText("Recommended");
  await expect(q4).toContainText("98 MB");
  await expect(q4).toContainText(/fits · ~[\d.]+ tokens\/s here/);
  await expect(quants).toContainText("Pinned to commit 0123456789ab");
  await shot(page, "hub-quants");

  await q4.getByRole("button", { name: "Download" }).click();
  await expect(page.getByTestId("status")).toContainText("is installed and ready", { timeout: 60_000 });
  // Named by the model's own name once the card knows it, not by its id.
  await expect(page.getByTestId("status")).not.toContainText(HUB_ID);
  expect(rig.lb.installed(HUB_ID)?.length).toBe(98_362_432);
  await shot(page, "hub-installed");
  // "Models on this machine" shows it with its license and its repo's page.
  const row = page.locator(`[data-testid="model-row"][data-model="${HUB_ID}"]`);
  await expect(row.getByTestId("model-license")).toContainText("license apache-2.0");
  await expect(row.getByRole("link", { name: "model page" })).toHaveAttribute("href", new RegExp(`/${HUB_REPO}$`));
  await row.scrollIntoViewIfNeeded();
  await shot(page, "hub-on-disk");
});

test("a hub that cannot be reached says so in plain words, and the catalog still works", async ({ page }) => {
  await rig.lb.stop();
  rig.lb.extraEnv = { HF_ENDPOINT: "http://127.0.0.1:9" };
  await rig.lb.start();
  await signIn(page, rig.lb.loginUrl);
  await search(page, "smollm2");
  await expect(page.getByTestId("hub-problem")).toContainText("can't reach 127.0.0.1");
  await expect(page.getByTestId("recommendation")).toContainText("Recommended");
  await hub(page).scrollIntoViewIfNeeded();
  await shot(page, "hub-unreachable");
});
