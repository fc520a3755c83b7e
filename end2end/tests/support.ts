// Real parts for the end-to-end tests: the release `localbrain` binary, started and killed per
// test, and a model file server on loopback (Range, ETag, a set speed, a corrupt mode).
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, writeFileSync, existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test as base, expect, type Page } from "@playwright/test";

/**
 * Playwright's `test`, failing any test whose page broke the Content-Security-Policy: Chromium
 * logs each violation to the console, and a `securitypolicyviolation` listener (added before any
 * page script runs, outside the page's policy) logs the ones it might not. Every spec imports
 * `test` from here.
 */
export const test = base.extend<{ cspGuard: void }>({
  cspGuard: [
    async ({ page }, use) => {
      const violations: string[] = [];
      page.on("console", (m) => {
        if (/Content[- ]Security[- ]Policy/i.test(m.text())) violations.push(m.text());
      });
      await page.addInitScript(() =>
        document.addEventListener("securitypolicyviolation", (e) =>
          console.error(`Content Security Policy violation: ${e.violatedDirective} blocked ${e.blockedURI}`),
        ),
      );
      await use();
      expect(violations, "the page broke its Content-Security-Policy").toEqual([]);
    },
    { auto: true },
  ],
});

// The binary the cargo tests built (`make test-e2e` builds it the same way), or LOCALBRAIN_BIN
// (e.g. target/release/localbrain after `make build`, to try the release bundle).
export const BIN = process.env.LOCALBRAIN_BIN ?? resolve(__dirname, "../../target/debug/localbrain");
/** The one real model (SmolLM2-135M-Instruct Q4_1), fetched by scripts/install-tools.sh test. */
export const SMOL = "smollm2-135m-instruct-q4_1";
export const SMOL_PATH =
  process.env.LOCALBRAIN_TEST_MODEL ?? join(process.env.HOME ?? "/root", ".cache/localbrain/models/SmolLM2-135M-Instruct.Q4_1.gguf");
const SMOL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
const SMOL_SIZE = 98_362_432;
export const MODEL_SIZE = 6 * 1024 * 1024;
export const BIG_LOCAL_SIZE = 3 * 1024 ** 3;

/** Deterministic, non-repeating bytes (xorshift), so a splice or corruption changes the hash. */
export function modelBytes(size: number, seed: number): Buffer {
  const out = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

export const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

export async function freePort(): Promise<number> {
  return new Promise((ok) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => ok(port));
    });
  });
}

/** Serves model files over HTTP with Range support at `bytesPerSecond`. */
export class ModelServer {
  good = modelBytes(MODEL_SIZE, 7);
  corrupt = modelBytes(MODEL_SIZE, 99);
  bytesPerSecond = 1_500_000;
  requests: string[] = [];
  private smolBytes?: Buffer;

  /** The real model's bytes, read on first use. */
  smol(): Buffer {
    if (!existsSync(SMOL_PATH)) throw new Error(`the test model is missing at ${SMOL_PATH}: run scripts/install-tools.sh test`);
    this.smolBytes ??= readFileSync(SMOL_PATH);
    return this.smolBytes;
  }
  private server?: http.Server;
  port = 0;

  async start() {
    this.server = http.createServer((req, res) => this.handle(req, res));
    await new Promise<void>((ok) => this.server!.listen(0, "127.0.0.1", () => ok()));
    this.port = (this.server!.address() as net.AddressInfo).port;
  }

  stop() {
    this.server?.closeAllConnections();
    this.server?.close();
  }

  url(name: string) {
    return `http://127.0.0.1:${this.port}/${name}`;
  }

  /**
   * The Hugging Face hub's API as localbrain calls it (server/testkit/HUB.md has the shapes), with
   * one repo holding the real model: search, the repo's details, its tree, and `resolve`
   * redirecting to the file on this same server. Answers true when it answered.
   */
  private hub(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    const url = new URL(req.url ?? "/", "http://x");
    const json = (v: unknown) => {
      res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify(v));
      return true;
    };
    if (url.pathname === "/api/models") {
      const q = (url.searchParams.get("search") ?? "").toLowerCase();
      const found = HUB_REPO.toLowerCase().includes(q)
        ? [{ id: HUB_REPO, downloads: 123_456, likes: 789, lastModified: "2026-11-30T12:00:00.000Z", gated: false, tags: ["gguf"] }]
        : [];
      return json(found);
    }
    // The hub answers a revision by name or by its commit (the card's address pins the commit).
    if (url.pathname === `/api/models/${HUB_REPO}/revision/main` || url.pathname === `/api/models/${HUB_REPO}/revision/${HUB_COMMIT}`) {
      return json({ id: HUB_REPO, sha: HUB_COMMIT, gated: false, private: false, cardData: { license: "apache-2.0" }, siblings: [{ rfilename: HUB_FILE }] });
    }
    if (url.pathname === `/api/models/${HUB_REPO}/tree/${HUB_COMMIT}`) {
      const size = this.smol().length;
      return json([{ type: "file", oid: "0".repeat(40), size, path: HUB_FILE, lfs: { oid: SMOL_SHA256, size, pointerSize: 134 } }]);
    }
    if (url.pathname === `/${HUB_REPO}/resolve/${HUB_COMMIT}/${HUB_FILE}`) {
      res.writeHead(302, {
        Location: this.url("smollm.gguf"),
        "X-Repo-Commit": HUB_COMMIT,
        "X-Linked-Etag": `"${SMOL_SHA256}"`,
        "X-Linked-Size": String(this.smol().length),
      }).end();
      return true;
    }
    return false;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse) {
    this.requests.push(`${req.url} ${req.headers.range ?? ""}`);
    if (this.hub(req, res)) return;
    // Both files carry the good file's name in the catalog; /corrupt.gguf sends other bytes.
    const body =
      req.url === "/good.gguf" ? this.good : req.url === "/corrupt.gguf" ? this.corrupt : req.url === "/smollm.gguf" ? this.smol() : undefined;
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    let start = 0;
    let last = body.length - 1;
    // `bytes=N-` (a resume) and `bytes=N-M` (the GGUF header read before a hub download).
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
    const etag = `"${req.url}-v1"`;
    if (m && (!req.headers["if-range"] || req.headers["if-range"] === etag)) {
      start = Number(m[1]);
      if (m[2]) last = Math.min(Number(m[2]), last);
      if (start > last) {
        res.writeHead(416, { "Content-Range": `bytes */${body.length}` }).end();
        return;
      }
      res.writeHead(206, {
        "Content-Length": last + 1 - start,
        "Content-Range": `bytes ${start}-${last}/${body.length}`,
        ETag: etag,
      });
    } else {
      res.writeHead(200, { "Content-Length": body.length, ETag: etag });
    }
    const chunk = 64 * 1024;
    let pos = start;
    const pump = () => {
      if (res.destroyed) return;
      if (pos > last) {
        res.end();
        return;
      }
      const end = Math.min(pos + chunk, last + 1);
      res.write(body.subarray(pos, end));
      pos = end;
      setTimeout(pump, (chunk / this.bytesPerSecond) * 1000);
    };
    pump();
  }
}

export const HUB_REPO = "test-org/SmolLM2-135M-Instruct-GGUF";
const HUB_COMMIT = "0123456789abcdef0123456789abcdef01234567";
const HUB_FILE = "SmolLM2-135M-Instruct-Q4_1.gguf";

/** A catalog with a good model, one whose server sends corrupt bytes, and one too big for any disk. */
export function writeCatalog(dir: string, files: ModelServer): string {
  const hash = sha256(files.good);
  const entry = (id: string, name: string, url: string, quality: number, size = MODEL_SIZE, sha = hash, context = 4096) => `
[[models]]
id = "${id}"
name = "${name}"
family = "test"
params_b = 0.1
quant = "Q4_K_M"
url = "${url}"
sha256 = "${sha}"
size_bytes = ${size}
min_ram_gb = 1
context_length = ${context}
license = "apache-2.0"
quality = ${quality}
`;
  const path = join(dir, "catalog.toml");
  writeFileSync(
    path,
    entry("tiny-good", "Tiny Good Model", files.url("good.gguf"), 20) +
      entry("tiny-corrupt", "Tiny Corrupt Model", files.url("corrupt.gguf"), 10) +
      // Bigger than any test disk: starting it must be refused with 507 before a byte moves.
      entry("huge-model", "Huge Model", files.url("good.gguf"), 5, 50 * 1024 ** 4) +
      // Checked on disk before any download: a big local file makes "verifying" observable.
      entry("big-local", "Big Local Model", files.url("good.gguf"), 4, BIG_LOCAL_SIZE) +
      // Its host refuses every connection (nothing listens on port 9): the offline case.
      entry("offline-model", "Offline Model", "http://127.0.0.1:9/offline.gguf", 2) +
      // An embedding model: recommended beside the chat pick, never as it.
      entry("tiny-embed", "Tiny Embedding Model", files.url("good.gguf"), 30) +
      'purpose = "embedding"\n' +
      // The real model: the chat tests download it and talk to it.
      entry(SMOL, "SmolLM2 135M", files.url("smollm.gguf"), 1, SMOL_SIZE, SMOL_SHA256, 8192),
  );
  return path;
}

/** One localbrain server process with its own data folder. */
export class Localbrain {
  dataDir = mkdtempSync(join(tmpdir(), "localbrain-e2e-"));
  port = 0;
  catalog = "";
  loginUrl = "";
  /** Settings of this server beyond the suite's own. */
  extraEnv: Record<string, string> = {};
  private child?: ChildProcess;

  constructor(public files: ModelServer) {}

  get base() {
    return `http://127.0.0.1:${this.port}`;
  }

  get modelsDir() {
    return join(this.dataDir, "models");
  }

  private env() {
    // One generation thread and a 1K context keep replies quick and steady on a shared machine.
    return {
      ...process.env,
      LOCALBRAIN_CATALOG: this.catalog,
      DATABASE_URL: "",
      RUST_LOG: "warn",
      LOCALBRAIN_THREADS: "1",
      LOCALBRAIN_CONTEXT: "1024",
      // Four retries (about 4-8 s of waiting in all) instead of eight, so a failure's end is
      // reached within a test.
      LOCALBRAIN_RETRIES: "4",
      // The model server also plays the Hugging Face hub (ModelServer.hub).
      HF_ENDPOINT: `http://127.0.0.1:${this.files.port}`,
      HF_TOKEN: "",
      ...this.extraEnv,
    };
  }

  /** Starts (or restarts, on the same folder and port) and waits for the login link. */
  async start() {
    if (!this.port) this.port = await freePort();
    if (!this.catalog) this.catalog = writeCatalog(this.dataDir, this.files);
    const child = spawn(BIN, ["--data-dir", this.dataDir, "serve", "--addr", `127.0.0.1:${this.port}`], {
      env: this.env(),
      stdio: ["ignore", "pipe", "inherit"],
    });
    this.child = child;
    this.loginUrl = await new Promise<string>((ok, fail) => {
      let out = "";
      child.stdout!.on("data", (d) => {
        out += d;
        const m = /(http:\/\/\S+\/login\?token=[0-9a-f]+)/.exec(out);
        if (m) ok(m[1]);
      });
      child.on("exit", (code) => fail(new Error(`localbrain exited with ${code}: ${out}`)));
    });
  }

  /** Sends `signal` and waits for the process to be gone (its port free for a restart). */
  async kill(signal: NodeJS.Signals = "SIGKILL") {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((ok) => this.child!.once("exit", ok));
    this.child.kill(signal);
    await exited;
  }

  async stop() {
    if (!this.child || this.child.exitCode !== null) return;
    const exited = new Promise((ok) => this.child!.once("exit", ok));
    this.child.kill("SIGTERM");
    await exited;
  }

  /** `localbrain user add NAME`: its login link. */
  addUser(name: string): string {
    const out = execFileSync(BIN, ["--data-dir", this.dataDir, "user", "add", name], {
      env: { ...this.env(), LOCALBRAIN_ADDR: `127.0.0.1:${this.port}` },
    }).toString();
    const m = /(http:\/\/\S+\/login\?token=[0-9a-f]+)/.exec(out);
    if (!m) throw new Error(`no login link in: ${out}`);
    return m[1];
  }

  installed(model: string): Buffer | undefined {
    const p = join(this.modelsDir, `${model}.gguf`);
    return existsSync(p) ? readFileSync(p) : undefined;
  }

  /** Bytes in the partial files on disk (what survives a kill -9). */
  partialBytes(): number {
    const dir = join(this.modelsDir, ".partial");
    return this.partials().reduce((sum, f) => sum + statSync(join(dir, f)).size, 0);
  }

  partials(): string[] {
    const dir = join(this.modelsDir, ".partial");
    return existsSync(dir) ? readdirSync(dir) : [];
  }
}

/**
 * What every spec sets up: one model file server for the file (started before its first test,
 * stopped after its last) and a fresh `localbrain serve`, with its own data folder, for each test.
 * Each test starts with the file server at `bytesPerSecond` (its default when not given) and an
 * empty request log. The fields are filled in by the hooks: read them inside tests. The hooks are
 * Playwright's plain ones, which use no fixture, so a spec on the plain `test` (csp) gets no guard.
 */
export function useLocalbrain(opts: { bytesPerSecond?: number } = {}): { files: ModelServer; lb: Localbrain } {
  const ctx = {} as { files: ModelServer; lb: Localbrain };
  base.beforeAll(async () => {
    ctx.files = new ModelServer();
    await ctx.files.start();
  });
  base.afterAll(() => ctx.files.stop());
  base.beforeEach(async () => {
    ctx.files.bytesPerSecond = opts.bytesPerSecond ?? new ModelServer().bytesPerSecond;
    ctx.files.requests = [];
    ctx.lb = new Localbrain(ctx.files);
    await ctx.lb.start();
  });
  base.afterEach(() => ctx.lb.stop());
  return ctx;
}

export async function waitHydrated(page: Page) {
  await expect(page.locator("main[data-hydrated=true]")).toBeAttached({ timeout: 20_000 });
}

export async function signIn(page: Page, loginUrl: string) {
  await page.goto(loginUrl);
  await expect(page).toHaveURL(/\/settings$/);
  await waitHydrated(page);
}

/** The progress bar's aria-valuenow as a number. */
export async function percent(page: Page): Promise<number> {
  return Number(await page.getByRole("progressbar").getAttribute("aria-valuenow"));
}

export async function shot(page: Page, name: string) {
  await page.screenshot({ path: `screenshots/${name}.png`, fullPage: true });
}
