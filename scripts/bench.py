#!/usr/bin/env python3
"""make bench: time a verified download of one file over loopback, against curl, curl + openssl
and aria2c, in one run, alternating, and print min/median wall time and peak RSS.

nginx (sendfile on) serves a generated file; `localbrain download` fetches it through a catalog
pointing at that server. Everything started here is stopped by PID at the end.
Environment: BENCH_SIZE_MB (default 2048), BENCH_RUNS (default 3), BENCH_DIR (default a temp dir),
BENCH_CONNECTIONS (e.g. "1 4 16": one localbrain row per --connections value; default: one row with
the product's setting), BENCH_LIMIT_RATE (e.g. "50m": nginx caps each connection at that many bytes
per second, as CDNs do; default: no cap), BENCH_BASELINE_BIN (another build of localbrain, e.g. the
commit before a refactor: its rows run alternating with this build's, in the same run).
"""
import os, re, shutil, signal, statistics, subprocess, sys, tempfile, time

from lbserve import BIN, catalog_env, free_port

SIZE = int(os.environ.get("BENCH_SIZE_MB", "2048")) * 1024 * 1024
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
LIMIT_RATE = os.environ.get("BENCH_LIMIT_RATE", "")


def make_file(path):
    if os.path.exists(path) and os.path.getsize(path) == SIZE:
        return
    with open("/dev/urandom", "rb") as src, open(path, "wb") as dst:
        left = SIZE
        while left:
            n = min(left, 8 << 20)
            dst.write(src.read(n))
            left -= n


def sha256(path):
    out = subprocess.run(["openssl", "dgst", "-sha256", "-r", path], capture_output=True, text=True, check=True)
    return out.stdout.split()[0]


def timed(cmd, env=None):
    """Wall seconds and peak RSS (MB) of a command, from /usr/bin/time -v."""
    r = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"benchmark command failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", r.stderr)
    h, m, s = wall.groups()
    secs = int(h or 0) * 3600 + int(m) * 60 + float(s)
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1))
    return secs, rss_kb / 1024


def main():
    work = os.environ.get("BENCH_DIR") or tempfile.mkdtemp(prefix="lb-bench-")
    os.makedirs(work, exist_ok=True)
    os.chmod(work, 0o755)  # nginx's workers run as nobody and must reach the file
    www = os.path.join(work, "www")
    os.makedirs(www, exist_ok=True)
    src = os.path.join(www, "model.gguf")
    print(f"generating {SIZE >> 20} MiB test file in {www} ...", flush=True)
    make_file(src)
    digest = sha256(src)
    port = free_port()
    conf = os.path.join(work, "nginx.conf")
    pid_file = os.path.join(work, "nginx.pid")
    with open(conf, "w") as f:
        f.write(f"""
worker_processes 1;
pid {pid_file};
error_log {work}/nginx-error.log;
events {{ worker_connections 256; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  {f"limit_rate {LIMIT_RATE};" if LIMIT_RATE else ""}
  server {{
    listen 127.0.0.1:{port};
    root {www};
  }}
}}
""")
    subprocess.run(["nginx", "-c", conf, "-p", work], check=True)
    url = f"http://127.0.0.1:{port}/model.gguf"
    try:
        for _ in range(50):
            if os.path.exists(pid_file):
                break
            time.sleep(0.1)
        catalog = os.path.join(work, "catalog.toml")
        with open(catalog, "w") as f:
            f.write(f"""[[models]]
id = "bench-model"
name = "Benchmark file"
family = "bench"
params_b = 1.0
quant = "Q4_K_M"
url = "{url}"
sha256 = "{digest}"
size_bytes = {SIZE}
min_ram_gb = 1
context_length = 4096
license = "apache-2.0"
quality = 1
""")
        out = os.path.join(work, "out.gguf")
        data = os.path.join(work, "lb-data")
        env = catalog_env(catalog)

        def curl():
            return timed(["curl", "-sS", "-o", out, url])

        def curl_openssl():
            return timed(["bash", "-c", f"curl -sS -o {out} {url} && openssl dgst -sha256 {out} >/dev/null"])

        def aria2():
            return timed(["aria2c", "-q", "-x16", "-s16", "--allow-overwrite=true", "--auto-file-renaming=false",
                          f"--checksum=sha-256={digest}", "-d", work, "-o", "out.gguf", url])

        def localbrain(connections, binary=BIN):
            def run():
                shutil.rmtree(data, ignore_errors=True)
                flags = ["--connections", connections] if connections else []
                return timed([binary, "--data-dir", data, *flags, "download", "bench-model"], env=env)
            return run

        tools = [("curl -o", curl), ("curl -o, then openssl dgst", curl_openssl),
                 ("aria2c -x16 -s16 --checksum", aria2)]
        sweep = os.environ.get("BENCH_CONNECTIONS", "").split()
        baseline = os.environ.get("BENCH_BASELINE_BIN")
        builds = [("", BIN)] + ([(" (baseline)", baseline)] if baseline else [])
        for tag, binary in builds:
            if sweep:
                tools += [(f"localbrain download --connections {n}{tag}", localbrain(n, binary)) for n in sweep]
            else:
                tools.append((f"localbrain download{tag}", localbrain(None, binary)))
        results = {name: [] for name, _ in tools}
        for run in range(RUNS):
            for name, fn in tools:
                for p in (out,):
                    if os.path.exists(p):
                        os.remove(p)
                # Each command starts with no dirty pages left by the one before (the files are
                # written back first), so none pays for another's writeback.
                os.sync()
                results[name].append(fn())
                print(f"  run {run + 1} {name}: {results[name][-1][0]:.2f} s, {results[name][-1][1]:.0f} MB", flush=True)
        installed = os.path.join(data, "models", "bench-model.gguf")
        if sha256(installed) != digest:
            sys.exit("localbrain installed a file with the wrong hash")
        base = statistics.median(w for w, _ in results["curl -o, then openssl dgst"])
        cap = f", each connection capped at {LIMIT_RATE}B/s" if LIMIT_RATE else ""
        print(f"\n{SIZE >> 20} MiB over loopback from nginx (sendfile{cap}), {RUNS} runs each, alternating:\n")
        print("| command | min s | median s | peak RSS MB | median vs curl+openssl |")
        print("|---|---|---|---|---|")
        for name, _ in tools:
            walls = [w for w, _ in results[name]]
            rss = max(r for _, r in results[name])
            print(f"| {name} | {min(walls):.2f} | {statistics.median(walls):.2f} | {rss:.0f} | {statistics.median(walls) / base:.2f}x |")
    finally:
        if os.path.exists(pid_file):
            os.kill(int(open(pid_file).read().strip()), signal.SIGTERM)
        if not os.environ.get("BENCH_DIR"):
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
