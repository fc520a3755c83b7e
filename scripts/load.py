#!/usr/bin/env python3
"""make load: does the server keep answering while downloads run at full speed?

nginx serves four large files on loopback; localbrain downloads all four at once (a user each),
and wrk polls POST /api/downloads/get for LOAD_SECONDS, first at LOAD_RATE polls/s (the issue's
200), then as fast as it can, reporting latency percentiles of each. Everything started here is
stopped by PID at the end.
Environment: LOAD_SIZE_MB (default 3072 per file), LOAD_SECONDS (default 10), LOAD_CONNECTIONS (20),
LOAD_RATE (200).
"""
import json, os, re, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "localbrain")
SIZE = int(os.environ.get("LOAD_SIZE_MB", "3072")) * 1024 * 1024
SECONDS = int(os.environ.get("LOAD_SECONDS", "10"))
CONNS = int(os.environ.get("LOAD_CONNECTIONS", "20"))
RATE = int(os.environ.get("LOAD_RATE", "200"))


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def post(base, path, body, cookie):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json", "cookie": cookie})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())


def login(url):
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None
    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(url)
    except urllib.error.HTTPError as e:
        return e.headers["set-cookie"].split(";")[0]
    sys.exit("login did not redirect")


def main():
    work = tempfile.mkdtemp(prefix="lb-load-")
    os.chmod(work, 0o755)
    www = os.path.join(work, "www"); os.makedirs(www)
    # One sparse-free file, hard-linked four times: four URLs, one page-cache copy.
    src = os.path.join(www, "m0.gguf")
    with open("/dev/urandom", "rb") as r, open(src, "wb") as w:
        left = SIZE
        while left:
            n = min(left, 8 << 20); w.write(r.read(n)); left -= n
    for i in range(1, 4):
        os.link(src, os.path.join(www, f"m{i}.gguf"))
    digest = subprocess.run(["openssl", "dgst", "-sha256", "-r", src], capture_output=True, text=True).stdout.split()[0]
    nport, port = free_port(), free_port()
    pid_file = os.path.join(work, "nginx.pid")
    with open(os.path.join(work, "nginx.conf"), "w") as f:
        f.write(f"worker_processes 1; pid {pid_file}; error_log {work}/err.log;\n"
                f"events {{ worker_connections 256; }}\n"
                f"http {{ access_log off; sendfile on; server {{ listen 127.0.0.1:{nport}; root {www}; }} }}\n")
    subprocess.run(["nginx", "-c", os.path.join(work, "nginx.conf"), "-p", work], check=True)
    server = None
    try:
        with open(os.path.join(work, "catalog.toml"), "w") as f:
            for i in range(4):
                f.write(f'[[models]]\nid = "load-{i}"\nname = "Load {i}"\nfamily = "load"\nparams_b = 1.0\n'
                        f'quant = "Q4_K_M"\nurl = "http://127.0.0.1:{nport}/m{i}.gguf"\nsha256 = "{digest}"\n'
                        f'size_bytes = {SIZE}\nmin_ram_gb = 1\ncontext_length = 4096\nlicense = "apache-2.0"\nquality = {i + 1}\n\n')
        env = dict(os.environ, LOCALBRAIN_CATALOG=os.path.join(work, "catalog.toml"), DATABASE_URL="", RUST_LOG="warn")
        data = os.path.join(work, "data")
        server = subprocess.Popen([BIN, "--data-dir", data, "serve", "--addr", f"127.0.0.1:{port}"],
                                  env=env, stdout=subprocess.PIPE, text=True)
        link = None
        while link is None:
            line = server.stdout.readline()
            if not line:
                sys.exit("server exited")
            m = re.search(r"(http://\S+/login\?token=[0-9a-f]+)", line)
            link = m and m.group(1)
        base = f"http://127.0.0.1:{port}"
        cookie = login(link)
        ids = [post(base, "/api/downloads/start", {"model_id": f"load-{i}"}, cookie)["id"] for i in range(4)]
        time.sleep(1.0)
        script = (f'wrk.method = "POST"\nwrk.body = \'{{"id": {ids[0]}}}\'\n'
                  f'wrk.headers["content-type"] = "application/json"\nwrk.headers["cookie"] = "{cookie}"\n')
        outs = []
        # wrk's delay() paces each connection: CONNS connections, one poll each per CONNS/RATE s.
        for name, extra in ((f"at {RATE} polls/s", f"function delay() return {1000 * CONNS // RATE} end\n"),
                            ("as fast as it can", "")):
            lua = os.path.join(work, "poll.lua")
            with open(lua, "w") as f:
                f.write(script + extra)
            out = subprocess.run(["wrk", "-t2", f"-c{CONNS}", f"-d{SECONDS}s", "--latency", "-s", lua,
                                  f"{base}/api/downloads/get"], capture_output=True, text=True).stdout
            print(f"--- polling {name}, while four downloads run ---\n{out}")
            outs.append(out)
        out = "".join(outs)
        views = [post(base, "/api/downloads/get", {"id": i}, cookie) for i in ids]
        done = sum(v["bytes_downloaded"] for v in views)
        print(f"downloads while polled: {[v['status'] for v in views]}, {done / 1e9:.1f} GB on disk after {2 * SECONDS + 1} s")
        # Status codes other than 2xx would show as "Non-2xx" in wrk's output.
        if "Non-2xx" in out:
            sys.exit("some polls failed")
    finally:
        if server:
            server.send_signal(signal.SIGTERM); server.wait(timeout=10)
        if os.path.exists(pid_file):
            os.kill(int(open(pid_file).read().strip()), signal.SIGTERM)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
