#!/usr/bin/env python3
"""make load: does the server keep answering while downloads run at full speed?

nginx serves four large files on loopback; localbrain downloads all four at once (a user each),
and wrk polls POST /api/downloads/get for LOAD_SECONDS, first at LOAD_RATE polls/s (the issue's
200), then as fast as it can, reporting latency percentiles of each. Everything started here is
stopped by PID at the end.
Environment: LOAD_SIZE_MB (default 3072 per file), LOAD_SECONDS (default 10), LOAD_CONNECTIONS (20),
LOAD_RATE (200).
"""
import os, shutil, signal, subprocess, sys, tempfile, time

from lbserve import Serve, catalog_env, free_port

SIZE = int(os.environ.get("LOAD_SIZE_MB", "3072")) * 1024 * 1024
SECONDS = int(os.environ.get("LOAD_SECONDS", "10"))
CONNS = int(os.environ.get("LOAD_CONNECTIONS", "20"))
RATE = int(os.environ.get("LOAD_RATE", "200"))


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
    nport = free_port()
    pid_file = os.path.join(work, "nginx.pid")
    with open(os.path.join(work, "nginx.conf"), "w") as f:
        f.write(f"worker_processes 1; pid {pid_file}; error_log {work}/err.log;\n"
                f"events {{ worker_connections 256; }}\n"
                f"http {{ access_log off; sendfile on; server {{ listen 127.0.0.1:{nport}; root {www}; }} }}\n")
    subprocess.run(["nginx", "-c", os.path.join(work, "nginx.conf"), "-p", work], check=True)
    try:
        catalog = os.path.join(work, "catalog.toml")
        with open(catalog, "w") as f:
            for i in range(4):
                f.write(f'[[models]]\nid = "load-{i}"\nname = "Load {i}"\nfamily = "load"\nparams_b = 1.0\n'
                        f'quant = "Q4_K_M"\nurl = "http://127.0.0.1:{nport}/m{i}.gguf"\nsha256 = "{digest}"\n'
                        f'size_bytes = {SIZE}\nmin_ram_gb = 1\ncontext_length = 4096\nlicense = "apache-2.0"\nquality = {i + 1}\n\n')
        with Serve(os.path.join(work, "data"), catalog_env(catalog)) as server:
            poll(work, server)
    finally:
        if os.path.exists(pid_file):
            os.kill(int(open(pid_file).read().strip()), signal.SIGTERM)
        shutil.rmtree(work, ignore_errors=True)


def poll(work, server):
    """Starts the four downloads, then polls the first with wrk at RATE and then flat out."""
    ids = [server.post("/api/downloads/start", {"model_id": f"load-{i}"})["id"] for i in range(4)]
    time.sleep(1.0)
    script = (f'wrk.method = "POST"\nwrk.body = \'{{"id": {ids[0]}}}\'\n'
              f'wrk.headers["content-type"] = "application/json"\nwrk.headers["cookie"] = "{server.cookie}"\n')
    outs = []
    # wrk's delay() paces each connection: CONNS connections, one poll each per CONNS/RATE s.
    for name, extra in ((f"at {RATE} polls/s", f"function delay() return {1000 * CONNS // RATE} end\n"),
                        ("as fast as it can", "")):
        lua = os.path.join(work, "poll.lua")
        with open(lua, "w") as f:
            f.write(script + extra)
        out = subprocess.run(["wrk", "-t2", f"-c{CONNS}", f"-d{SECONDS}s", "--latency", "-s", lua,
                              f"{server.base}/api/downloads/get"], capture_output=True, text=True).stdout
        print(f"--- polling {name}, while four downloads run ---\n{out}")
        outs.append(out)
    out = "".join(outs)
    views = [server.post("/api/downloads/get", {"id": i}) for i in ids]
    done = sum(v["bytes_downloaded"] for v in views)
    print(f"downloads while polled: {[v['status'] for v in views]}, {done / 1e9:.1f} GB on disk after {2 * SECONDS + 1} s")
    # Status codes other than 2xx would show as "Non-2xx" in wrk's output.
    if "Non-2xx" in out:
        sys.exit("some polls failed")


if __name__ == "__main__":
    main()
