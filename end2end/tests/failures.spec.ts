// Failures a person understands (issue 15): while the engine waits between tries the card says
// why and counts down to the next try; the failure that ends it reads in plain words, with the
// technical account behind "Details".
import { expect } from "@playwright/test";
import { shot, signIn, test, useLocalbrain } from "./support";

const rig = useLocalbrain();

test("a host that refuses connections: a countdown while retrying, then plain words with Details", async ({ page }) => {
  await signIn(page, rig.lb.loginUrl);
  await page.getByLabel("Model", { exact: true }).selectOption("offline-model");
  await page.getByRole("button", { name: "Download" }).click();

  // Waiting between tries: why, when, which try; and a way to try at once.
  const retrying = page.getByTestId("retrying");
  await expect(retrying).toBeVisible({ timeout: 15_000 });
  await expect(retrying).toContainText("127.0.0.1 refused the connection");
  await expect(retrying).toContainText(/Trying again (in \d+ s|now) \(attempt \d of 5\)/);
  await expect(retrying.getByRole("button", { name: "Try now" })).toBeVisible();
  await expect(page.getByTestId("status")).toContainText("waiting to try again");
  await shot(page, "retrying-desktop");
  await page.setViewportSize({ width: 360, height: 800 });
  await shot(page, "retrying-360");
  await page.setViewportSize({ width: 1280, height: 800 });

  // The budget runs out: the failure in words, what to do, and the details closed until asked.
  await expect(page.getByTestId("status")).toContainText("The download failed", { timeout: 30_000 });
  const error = page.getByTestId("error");
  await expect(error).toContainText("127.0.0.1 refused the connection");
  await expect(error).toContainText("Try again later");
  await expect(error).not.toContainText("os error");
  const details = page.getByTestId("details");
  await expect(details.locator("pre")).toBeHidden();
  await details.getByText("Details").click();
  await expect(details.locator("pre")).toContainText("Connection refused");
  await expect(details.locator("pre")).toContainText("gave up after 5 tries");
  await expect(page.getByRole("button", { name: "Retry" })).toBeVisible();
  // The list below counts it among the unfinished downloads (nothing of it on disk).
  await expect(page.getByTestId("leftovers-line")).toHaveText("1 unfinished download holds 0 B");
  await shot(page, "failed-details-desktop");
  await page.setViewportSize({ width: 360, height: 800 });
  await shot(page, "failed-details-360");
});
