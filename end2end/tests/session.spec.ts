// Sessions that end (issue 16): Sign out in the page header ends the session at once.
import { expect } from "@playwright/test";
import { shot, signIn, test, useLocalbrain } from "./support";

const rig = useLocalbrain();

test("Sign out ends the session: the page says how to sign in, and the old cookie opens nothing", async ({ page }) => {
  await signIn(page, rig.lb.loginUrl);
  const cookie = (await page.context().cookies()).find((c) => c.name === "lb_session");
  expect(cookie).toBeDefined();
  await expect(page.getByTestId("whoami")).toHaveText("Signed in as admin");
  await shot(page, "signed-in-header-desktop");
  const desktop = page.viewportSize()!;
  await page.setViewportSize({ width: 360, height: 800 });
  await shot(page, "signed-in-header-360");
  await page.setViewportSize(desktop);
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/settings$/);
  await expect(page.locator("section.card")).toContainText("not signed in");
  // Signed out, the header offers nothing to sign out of.
  await expect(page.getByRole("button", { name: "Sign out" })).toHaveCount(0);
  await expect(page.getByTestId("whoami")).toHaveCount(0);
  expect((await page.context().cookies()).find((c) => c.name === "lb_session")).toBeUndefined();
  await shot(page, "signed-out-desktop");
  // The old cookie, sent by hand, is refused: the session ended on the server, not only here.
  const res = await page.request.post(`${rig.lb.base}/api/downloads/list`, {
    data: {},
    headers: { cookie: `lb_session=${cookie!.value}` },
  });
  expect(res.status()).toBe(401);
});
