// The Content-Security-Policy in the browser (issue 16, item 2). (That no string is run as code,
// no 'unsafe-eval', is checked on the header by the API tests: code Playwright evaluates is
// exempt from the page's policy, so it cannot show it here.) Every other spec runs under
// support's guard, so the app hydrates and works under the policy; this one shows what the
// policy refuses and that a violation is seen, which is why it uses Playwright's plain `test`.
import { test, expect, type ConsoleMessage } from "@playwright/test";
import { signIn, useLocalbrain } from "./support";

const rig = useLocalbrain();

const isViolation = (m: ConsoleMessage) => /Content Security Policy/i.test(m.text());

test("the page refuses an injected script and being framed", async ({ page, context }) => {
  const logged: string[] = [];
  page.on("console", (m) => {
    if (isViolation(m)) logged.push(m.text());
  });
  await signIn(page, rig.lb.loginUrl);
  expect(logged, "the page itself keeps to its policy").toEqual([]);

  // A script slipped into the page without the nonce does not run, and says so.
  const ran = await page.evaluate(() => {
    const s = document.createElement("script");
    s.textContent = "window.__injected = true";
    document.head.appendChild(s);
    return (window as unknown as { __injected?: boolean }).__injected === true;
  });
  expect(ran).toBe(false);
  await expect.poll(() => logged.length).toBeGreaterThan(0);

  // Another site cannot frame the page (clickjacking).
  const framer = await context.newPage();
  const refused: string[] = [];
  framer.on("console", (m) => {
    if (isViolation(m)) refused.push(m.text());
  });
  await framer.setContent(`<iframe src="${rig.lb.base}/settings" width="800" height="600"></iframe>`);
  await expect.poll(() => refused.join("\n")).toContain("frame-ancestors");
  const framed = framer.frames().find((f) => f.url().startsWith(rig.lb.base));
  expect(await framed?.locator("text=Local AI brain").count().catch(() => 0) ?? 0).toBe(0);
});
