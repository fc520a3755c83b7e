"""bench-parallel: aggregate generation tokens/s with N replies at once (N = 1, 2, 4, 8), localbrain
`--parallel N` against llama-server `-np N` built from the same llama.cpp source, same model,
threads and per-slot context, in one run. Each of the N streams asks its own question for a greedy
reply of BENCH_REPLY tokens (default 128); the figure is all completion tokens over the wall time
from the first request sent to the last reply ended (prompts included, the same for both).

Environment: BENCH_BIN (default target/release/localbrain), BENCH_STREAMS (default "1,2,4,8"),
BENCH_REPLY, BENCH_THREADS (default: what localbrain picks, physical cores - 1), LOCALBRAIN_TEST_MODEL.
"""
import concurrent.futures, http.client, json, os, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lbserve import BIN, LLAMA_SERVER, MODEL, MODEL_ID, LlamaServer, Serve, need, smol_data, threads

STREAMS = [int(n) for n in os.environ.get("BENCH_STREAMS", "1,2,4,8").split(",")]
REPLY = int(os.environ.get("BENCH_REPLY", "128"))
CONTEXT = 4096
TOPICS = ["the sea", "a mountain village", "an old clock", "a lost dog", "the first snow", "a night train",
          "a lighthouse keeper", "a garden in spring"]


def ask(port, key, model, i):
    """One greedy reply over /v1/chat/completions: its completion tokens."""
    question = f"Write a long story about {TOPICS[i % len(TOPICS)]}." if i >= 0 else "Say hi."
    body = json.dumps({"model": model, "max_tokens": REPLY, "temperature": 0, "seed": 1,
                       "messages": [{"role": "user", "content": question}]})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=900)
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    conn.request("POST", "/v1/chat/completions", body, headers)
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    if resp.status != 200:
        sys.exit(f"{port} answered {resp.status}: {raw[:300]}")
    return json.loads(raw)["usage"]["completion_tokens"]


def aggregate(port, key, model, n):
    """N replies at once: (tokens/s over the wall time, tokens)."""
    ask(port, key, model, -1)  # loaded and warm, with a question none of the streams asks
    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        started = time.monotonic()
        tokens = sum(pool.map(lambda i: ask(port, key, model, i), range(n)))
        wall = time.monotonic() - started
    return tokens / wall, tokens


def main():
    need((BIN, "make build"), (MODEL, "make test-tools"), (LLAMA_SERVER, "make bench-tools"))
    t = threads()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        data, env = smol_data(work)
        for n in STREAMS:
            env_n = dict(env, LOCALBRAIN_PARALLEL=str(n), LOCALBRAIN_THREADS=str(t), LOCALBRAIN_QUEUE_LIMIT="64")
            with Serve(data, env_n) as s:
                ours, ours_tokens = aggregate(s.port, s.key(f"bench-{n}"), MODEL_ID, n)
            with LlamaServer(n, CONTEXT, t) as port:
                theirs, theirs_tokens = aggregate(port, None, "smol", n)
            rows.append({"streams": n, "localbrain": ours, "llama_server": theirs,
                         "tokens": ours_tokens, "llama_server_tokens": theirs_tokens})
            print(f"N={n}: localbrain {ours:.1f} tok/s, llama-server {theirs:.1f} tok/s", flush=True)
    one = rows[0]
    print(f"\nthreads {t}, {REPLY} tokens a reply, context {CONTEXT} a slot")
    print(f"{'streams':>7} {'localbrain':>11} {'gain':>6} {'llama-server':>13} {'gain':>6} {'ratio':>6}")
    for r in rows:
        print(f"{r['streams']:>7} {r['localbrain']:>11.1f} {r['localbrain'] / one['localbrain']:>5.2f}x "
              f"{r['llama_server']:>13.1f} {r['llama_server'] / one['llama_server']:>5.2f}x "
              f"{r['localbrain'] / r['llama_server']:>5.2f}x")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
