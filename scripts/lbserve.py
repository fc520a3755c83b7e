"""What the benchmark scripts share: a free port, a data folder with the test model installed, and
a `localbrain serve` signed into as admin (the login link it prints, redeemed for the session
cookie). Imported by bench.py, bench_api.py, bench_brain.py and load.py, which run from any
directory (`python3 scripts/X.py` puts this folder on the path).
"""
import http.client, json, os, re, shutil, signal, socket, subprocess, sys, time, urllib.error, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("BENCH_BIN") or os.path.join(ROOT, "target", "release", "localbrain")
# The one real model (SmolLM2-135M-Instruct Q4_1), fetched by scripts/install-tools.sh test.
MODEL = os.environ.get("LOCALBRAIN_TEST_MODEL", os.path.expanduser("~/.cache/localbrain/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
MODEL_ID = "smollm2-135m-instruct-q4_1"
# llama.cpp's own server, built from the same source as our llama.cpp (install-tools.sh bench).
TOOLS = os.environ.get("LOCALBRAIN_TOOLS", os.path.expanduser("~/.cache/localbrain/tools"))
LLAMA_SERVER = os.path.join(TOOLS, "llama.cpp-11434.0.0", "bin", "llama-server")
LLAMA_EMBEDDING = os.path.join(TOOLS, "llama.cpp-11434.0.0", "bin", "llama-embedding")


def threads():
    """What localbrain picks unless BENCH_THREADS says: physical cores - 1, at least 1."""
    if os.environ.get("BENCH_THREADS"):
        return int(os.environ["BENCH_THREADS"])
    with open("/proc/cpuinfo") as f:
        cores = len({l for l in f if l.startswith("core id")}) or os.cpu_count()
    return max(1, cores - 1)


class LlamaServer:
    """`llama-server` on the test model with `slots` slots of `context` tokens each and `threads`
    threads, on a free port: `with LlamaServer(...) as port:`; stopped on exit."""

    def __init__(self, slots, context, threads, extra=()):
        self.slots, self.context, self.threads, self.extra = slots, context, threads, list(extra)

    def __enter__(self):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [LLAMA_SERVER, "-m", MODEL, "--host", "127.0.0.1", "--port", str(self.port), "-np", str(self.slots),
             "-c", str(self.context * self.slots), "-t", str(self.threads), "-tb", str(self.threads), *self.extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    return self.port
            except OSError:
                pass
            time.sleep(0.3)
        self.__exit__()
        sys.exit("llama-server did not become healthy")

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def need(*paths_and_fixes):
    """Exits with the command that makes each missing path."""
    for path, fix in paths_and_fixes:
        if not os.path.exists(path):
            sys.exit(f"missing {path}: run {fix}")


def smol_data(work):
    """A data folder under `work` with the test model installed, and the environment whose
    catalog lists it: (data folder, env)."""
    data = os.path.join(work, "data")
    models = os.path.join(data, "models")
    os.makedirs(models, exist_ok=True)
    target = os.path.join(models, MODEL_ID + ".gguf")
    if not os.path.exists(target):
        if os.stat(MODEL).st_dev == os.stat(work).st_dev:
            os.link(MODEL, target)
        else:
            shutil.copy(MODEL, target)
    catalog = os.path.join(work, "catalog.toml")
    with open(catalog, "w") as f:
        f.write(
            f'[[models]]\nid = "{MODEL_ID}"\nname = "SmolLM2 135M"\nfamily = "smollm2"\nparams_b = 0.135\nquant = "Q4_1"\n'
            f'url = "http://127.0.0.1:9/unused.gguf"\n'
            f'sha256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"\n'
            f'size_bytes = 98362432\nmin_ram_gb = 1\ncontext_length = 8192\nlicense = "apache-2.0"\nquality = 1\n'
        )
    return data, catalog_env(catalog)


def catalog_env(catalog):
    """This environment on the embedded SQLite, with `catalog` as the model list, quiet logs."""
    return dict(os.environ, LOCALBRAIN_CATALOG=catalog, DATABASE_URL="", RUST_LOG="warn")


class Serve:
    """`localbrain --data-dir DATA [ARGS] serve` on a free port, signed in as admin:
    `with Serve(data, env) as s:` gives s.base, s.port, s.cookie, s.pid; stopped on exit."""

    def __init__(self, data, env, args=()):
        self.data, self.env, self.args = data, env, list(args)

    def __enter__(self):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [BIN, "--data-dir", self.data, *self.args, "serve", "--addr", f"127.0.0.1:{self.port}"],
            env=self.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        self.pid = self.proc.pid
        try:
            self.cookie = sign_in(self._login_link())
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _login_link(self):
        while True:
            line = self.proc.stdout.readline()
            if not line:
                sys.exit("localbrain serve exited before printing its login link")
            m = re.search(r"(http://\S+/login\?token=\w+)", line)
            if m:
                return m.group(1)

    def post(self, path, body):
        """POST `body` as JSON to the app's API with the session cookie; the JSON answer."""
        req = urllib.request.Request(self.base + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Cookie": self.cookie})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def key(self, name):
        """A new API key for admin, made in the terminal as a person would."""
        out = subprocess.run([BIN, "--data-dir", self.data, "key", "add", "admin", name], env=self.env,
                             capture_output=True, text=True, check=True)
        return out.stdout.strip().splitlines()[-1]

    def __exit__(self, *exc):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def sign_in(link):
    """The session cookie a login link's redirect sets."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None

    try:
        urllib.request.build_opener(NoRedirect).open(link)
    except urllib.error.HTTPError as e:
        if e.code in (302, 303, 307) and e.headers.get("Set-Cookie"):
            return e.headers["Set-Cookie"].split(";")[0]
        raise
    sys.exit(f"the login link {link} set no session")
