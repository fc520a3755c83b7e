// Sessions that end (issue 16): Sign out in the page header ends the session at once.
import { expect } from "@playwright/test";
import { Localbrain, ModelServer, shot, signIn, test } from "./support";

let files: ModelServer;
let lb: Localbrain;

test.beforeAll(async () => {
  files = new ModelServer();
  await files.start();
});
test.afterAll(() => files.stop());
test.beforeEach(async () => {
  lb = new Localbrain(files);
  await lb.start();
});
test.afterEach(async () => {
  await lb.stop();
});

test("Sign out ends the session: the page says how to sign in, and the old cookie opens nothing", async ({ page }) => {
  await signIn(page, lb.loginUrl);
  const cookie = (await page.context().cookies()).find((c) => c.name === "lb_session");
  expect(cookie).toBeDefined();
  await shot(page, "signed-in-header-desktop");
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/settings$/);
  await expect(page.locator("section.card")).toContainText("not signed in");
  expect((await page.context().cookies()).find((c) => c.name === "lb_session")).toBeUndefined();
  await shot(page, "signed-out-desktop");
  // The old cookie, sent by hand, is refused: the session ended on the server, not only here.
  const res = await page.request.post(`${lb.base}/api/downloads/list`, {
    data: {},
    headers: { cookie: `lb_session=${cookie!.value}` },
  });
  expect(res.status()).toBe(401);
});
