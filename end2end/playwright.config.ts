import { defineConfig } from "@playwright/test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

// One fresh data folder per run, made by the main process and inherited by the workers.
process.env.LB_E2E_DATA ??= mkdtempSync(join(tmpdir(), "localbrain-e2e-"));
const port = Number(process.env.LB_E2E_PORT ?? 3107);
export const baseURL = `http://127.0.0.1:${port}`;

export default defineConfig({
  testDir: "./tests",
  timeout: 60_000,
  fullyParallel: false,
  workers: 1,
  forbidOnly: true,
  reporter: [["list"]],
  use: {
    baseURL,
    launchOptions: {
      // Debian's Chromium: Playwright's own browser download cannot work here.
      executablePath: "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    },
  },
  webServer: {
    command: `../target/release/localbrain --data-dir ${process.env.LB_E2E_DATA} serve --addr 127.0.0.1:${port}`,
    url: `${baseURL}/settings`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: "pipe",
    stderr: "pipe",
    env: { DATABASE_URL: "" },
  },
});
