"""bench-turns: the time to the first word of each turn of a growing conversation over /v1, the way an
OpenAI client sends it (the whole conversation again, plus the next question), against the same
conversation sent cold to a server that has never seen it, and against llama-server (built from the
same llama.cpp source, one slot of the same context, same threads) holding the same kind of
conversation with its own replies.

Each turn adds a user message of about 150 tokens and a greedy reply of up to BENCH_REPLY tokens
(default 100): about 250 tokens a turn. With the prompt cache, turn k reads only its new tokens, so
its first word should come about as fast as turn 1's; cold, it reads the whole conversation.

Environment: BENCH_BIN (default target/release/localbrain), BENCH_TURNS (default 8), BENCH_REPLY,
BENCH_THREADS (default: physical cores - 1, as localbrain picks), LOCALBRAIN_TEST_MODEL (default: the cached SmolLM2-135M).
"""
import http.client, json, os, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lbserve import BIN, LLAMA_SERVER, MODEL, MODEL_ID, LlamaServer, Serve, need, smol_data, threads

TURNS = int(os.environ.get("BENCH_TURNS", "8"))
REPLY = int(os.environ.get("BENCH_REPLY", "100"))
TOPICS = ["lighthouses", "bees", "volcanoes", "bridges", "clocks", "rivers", "glass", "trains", "maps", "salt"]


def question(k):
    """About 150 tokens of question for turn k (1-based), different each turn."""
    topic = TOPICS[(k - 1) % len(TOPICS)]
    return (f"Turn {k}. I am writing a short school report about {topic} and I would like your help. "
            f"Please explain, in plain words that a twelve-year-old can follow, how {topic} work, why people "
            f"have cared about {topic} for so long, what the most surprising fact about {topic} is, and what "
            f"a visitor to a museum about {topic} should look at first. Keep the answer friendly and short, "
            f"use simple sentences, avoid lists, and do not repeat what you told me about earlier topics. "
            f"If there is a common mistake people make when they talk about {topic}, mention it at the end.")


def first_word(port, key, messages, model=MODEL_ID):
    """Streams one reply: (seconds to the first piece, the reply's text, usage)."""
    body = json.dumps({"model": model, "stream": True, "max_tokens": REPLY, "temperature": 0, "seed": 1,
                       "stream_options": {"include_usage": True}, "messages": messages})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    sent = time.monotonic()
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    conn.request("POST", "/v1/chat/completions", body, headers)
    resp = conn.getresponse()
    if resp.status != 200:
        sys.exit(f"/v1 answered {resp.status}: {resp.read()[:300]}")
    first, text, usage = None, [], None
    for raw in resp:
        line = raw.decode().strip()
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        chunk = json.loads(line[6:])
        if chunk.get("usage"):
            usage = chunk["usage"]
        if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
            first = first or time.monotonic()
            text.append(chunk["choices"][0]["delta"]["content"])
    conn.close()
    return (first or time.monotonic()) - sent, "".join(text), usage


def main():
    need((BIN, "make build"), (MODEL, "make test-tools"), (LLAMA_SERVER, "make bench-tools"))
    with tempfile.TemporaryDirectory() as work:
        data, env = smol_data(work)
        rows, conversation = [], []
        with Serve(data, env) as s:
            key = s.key("bench-turns")
            # Loaded first, as for the cold runs and llama-server: turn 1 measures reading alone.
            first_word(s.port, key, [{"role": "user", "content": "Hi"}])
            for k in range(1, TURNS + 1):
                conversation.append({"role": "user", "content": question(k)})
                ttft, text, usage = first_word(s.port, key, conversation)
                rows.append({"turn": k, "warm_ms": ttft * 1000, "prompt_tokens": usage["prompt_tokens"],
                             "cached_tokens": usage["prompt_tokens_details"]["cached_tokens"]})
                conversation.append({"role": "assistant", "content": text})
        # The same conversations, each sent to a fresh server (nothing cached): what every turn
        # cost before the cache. Turn 1 and the last are enough for the ratios.
        for row in (rows[0], rows[-1]):
            k = row["turn"]
            with Serve(data, env) as s:
                key = s.key(f"cold-{k}")
                # Load the model first with an unrelated question, so cold measures reading alone.
                first_word(s.port, key, [{"role": "user", "content": "Hi"}])
                ttft, _, usage = first_word(s.port, key, conversation[: 2 * k - 1])
                row["cold_ms"], row["cold_cached"] = ttft * 1000, usage["prompt_tokens_details"]["cached_tokens"]
        # llama-server, the same questions, its own replies, its prompt cache (on by default).
        theirs = []
        with LlamaServer(1, 4096, threads()) as port:
            first_word(port, None, [{"role": "user", "content": "Hi"}], "smol")
            for k, row in enumerate(rows, start=1):
                theirs.append({"role": "user", "content": question(k)})
                ttft, text, _ = first_word(port, None, theirs, "smol")
                row["llama_server_ms"] = ttft * 1000
                theirs.append({"role": "assistant", "content": text})
    print(f"{'turn':>4} {'prompt':>7} {'cached':>7} {'first word ms':>14} {'cold ms':>9} {'llama-server ms':>16}")
    for r in rows:
        cold = f"{r['cold_ms']:9.0f}" if "cold_ms" in r else f"{'':>9}"
        print(f"{r['turn']:>4} {r['prompt_tokens']:>7} {r['cached_tokens']:>7} {r['warm_ms']:>14.0f} {cold} "
              f"{r['llama_server_ms']:>16.0f}")
    one, last = rows[0], rows[-1]
    print(f"turn {last['turn']}: localbrain / llama-server first word: {last['warm_ms'] / last['llama_server_ms']:.2f}x "
          f"(llama-server's own turn {last['turn']} / turn 1: {last['llama_server_ms'] / one['llama_server_ms']:.2f}x)")
    print(f"turn {last['turn']} / turn 1 first word: {last['warm_ms'] / one['warm_ms']:.2f}x (target <= 1.2x)")
    print(f"turn {last['turn']} with the cache / sent cold: {last['warm_ms'] / last['cold_ms']:.2f}x (target <= 0.25x)")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
