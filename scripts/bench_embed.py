#!/usr/bin/env python3
"""make bench-embed: /v1/embeddings inputs/s for 1 and 64 inputs, beside llama.cpp's own.

On the test model (SmolLM2-135M, mean pooling, unit length), side by side in one run:
- localbrain serve (release) POST /v1/embeddings, warm, the median of BENCH_RUNS requests;
- llama-server --embeddings --pooling mean (built from the same llama.cpp source), the same
  request to its /v1/embeddings, warm, the same median;
- llama-embedding (the CLI the issue names) on the same inputs: its vectors are the reference for
  the cosine check, and its own rate is the inputs over its wall time minus its model load
  (the process reads the model again each run, which no server does).
Printed: inputs/s each way and the ratio to llama-server, and the lowest cosine similarity of
our vectors to llama-embedding's (>= 0.999 expected).

Environment: BENCH_BIN, BENCH_RUNS (default 7), BENCH_THREADS, LOCALBRAIN_TEST_MODEL.
"""
import http.client, json, math, os, re, statistics, subprocess, sys, tempfile, time

from lbserve import LLAMA_EMBEDDING, LLAMA_SERVER, BIN, MODEL, MODEL_ID, LlamaServer, Serve, need, smol_data, threads

RUNS = int(os.environ.get("BENCH_RUNS", "7"))
WORDS = "the quick brown fox jumps over a lazy dog while rain falls on quiet hills near the old town".split()


def inputs(n):
    """n different sentences of 12 to 20 words (about as long as a RAG chunk's first line)."""
    return [" ".join(WORDS[(i + j) % len(WORDS)] for j in range(12 + i % 9)) + f" ({i})." for i in range(n)]


def post(port, path, body, headers):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json", **headers})
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != 200:
        sys.exit(f"{path} answered {resp.status}: {data[:300]!r}")
    return json.loads(data)


def rate(port, path, headers, model, texts):
    """Median inputs/s over RUNS warm requests, and the last answer's vectors."""
    post(port, path, {"model": model, "input": texts}, headers)  # warm: loaded, caches touched
    times, answer = [], None
    for _ in range(RUNS):
        t = time.monotonic()
        answer = post(port, path, {"model": model, "input": texts}, headers)
        times.append(time.monotonic() - t)
    return len(texts) / statistics.median(times), [d["embedding"] for d in sorted(answer["data"], key=lambda d: d["index"])]


def llama_embedding(texts, t):
    """llama-embedding's vectors for `texts` and its inputs/s net of its model load."""
    cmd = [LLAMA_EMBEDDING, "-m", MODEL, "-p", "\n".join(texts), "--pooling", "mean", "--embd-normalize", "2",
           "--embd-output-format", "json", "-t", str(t), "-c", "4096", "-b", "4096", "-ub", "4096", "--no-warmup"]
    runs, vectors = [], None
    for _ in range(max(3, RUNS // 2)):
        start = time.monotonic()
        out = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.monotonic() - start
        if out.returncode != 0:
            sys.exit(f"llama-embedding failed: {out.stderr[-800:]}")
        load = re.search(r"load time\s*=\s*([\d.]+) ms", out.stderr)
        runs.append(wall - (float(load.group(1)) / 1000 if load else 0.0))
        vectors = [d["embedding"] for d in json.loads(out.stdout[out.stdout.index("{"):])["data"]]
    return len(texts) / statistics.median(runs), vectors


def cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def main():
    need((BIN, "make build"), (MODEL, "scripts/install-tools.sh test"),
         (LLAMA_SERVER, "scripts/install-tools.sh bench"), (LLAMA_EMBEDDING, "scripts/install-tools.sh bench"))
    t = threads()
    print(f"embeddings on {os.path.basename(MODEL)}, {t} threads, median of {RUNS} warm requests")
    rows, worst = [], 1.0
    with tempfile.TemporaryDirectory(prefix="lb-embed-") as work:
        data, env = smol_data(work)
        with Serve(data, env, ["--threads", str(t)]) as server:
            key = server.key("bench")
            ours = {n: rate(server.port, "/v1/embeddings", {"Authorization": f"Bearer {key}"}, MODEL_ID, inputs(n)) for n in (1, 64)}
    with LlamaServer(1, 4096, t, ["--embeddings", "--pooling", "mean", "-b", "4096", "-ub", "4096"]) as port:
        theirs = {n: rate(port, "/v1/embeddings", {}, "m", inputs(n)) for n in (1, 64)}
    for n in (1, 64):
        cli_rate, reference = llama_embedding(inputs(n), t)
        low = min(cosine(a, b) for a, b in zip(ours[n][1], reference))
        worst = min(worst, low)
        rows.append((n, ours[n][0], theirs[n][0], cli_rate, low))
    print(f"{'inputs':>6} {'localbrain/s':>13} {'llama-server/s':>15} {'ratio':>6} {'llama-embedding/s':>18} {'min cosine':>11}")
    for n, a, b, c, low in rows:
        print(f"{n:>6} {a:>13.1f} {b:>15.1f} {a / b:>6.2f} {c:>18.1f} {low:>11.6f}")
    if worst < 0.999:
        sys.exit(f"cosine similarity to llama-embedding fell to {worst:.6f} (< 0.999)")


if __name__ == "__main__":
    main()
