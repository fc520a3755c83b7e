#!/usr/bin/env python3
"""make bench-api: 20 programs streaming from the OpenAI-compatible API at once.

A fresh `localbrain serve` (release build) with the test model installed, an API key made with
`localbrain key add`, and a signed-in card. BENCH_CLIENTS (default 20) threads each POST one
streamed /v1/chat/completions of BENCH_TOKENS (default 64) tokens at the same moment; meanwhile
the card's poll (POST /api/brain with the session cookie) runs every 100 ms. Printed: how many
completed and how many were told 429 (the queue holds 8 behind the one being written), time to
first token p50/p99 (queue included), generation tokens/s per answer, the card poll's latency
p50/p99/max under load, and whether anything hung (every request has a 300 s deadline).

Environment: BENCH_BIN (default target/release/localbrain), BENCH_CLIENTS, BENCH_TOKENS,
LOCALBRAIN_TEST_MODEL (default: the cached SmolLM2-135M).
"""
import http.client, json, os, statistics, sys, tempfile, threading, time

from lbserve import BIN, MODEL, MODEL_ID, Serve, need, smol_data

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "20"))
TOKENS = int(os.environ.get("BENCH_TOKENS", "64"))


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))] if v else float("nan")


def stream_one(port, key, start, out):
    """One streamed completion; records status, time to first piece, pieces and tokens/s."""
    body = json.dumps({"model": MODEL_ID, "stream": True, "max_tokens": TOKENS, "temperature": 0,
                       "stream_options": {"include_usage": True},
                       "messages": [{"role": "user", "content": "Write a long story about a lighthouse."}]})
    start.wait()
    sent = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        conn.request("POST", "/v1/chat/completions", body, {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        resp = conn.getresponse()
        if resp.status != 200:
            out.append({"status": resp.status, "retry_after": resp.getheader("Retry-After"), "body": resp.read()[:200]})
            return
        first = last = None
        pieces, done, usage = 0, False, None
        for raw in resp:
            line = raw.decode().strip()
            if not line.startswith("data: "):
                continue
            data = line[6:]
            if data == "[DONE]":
                done = True
                break
            chunk = json.loads(data)
            if "error" in chunk:
                out.append({"status": "error mid-stream", "body": data}); return
            if chunk.get("usage"):
                usage = chunk["usage"]
            if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                now = time.monotonic()
                first = first or now
                last = now
                pieces += 1
        gen = usage["completion_tokens"] if usage else pieces
        out.append({"status": 200, "done": done, "ttft": first - sent, "total": time.monotonic() - sent,
                    "tps": (gen - 1) / (last - first) if last and last > first else float("nan")})
    except Exception as e:  # a hang shows up here as a timeout
        out.append({"status": f"failed: {e}"})
    finally:
        conn.close()


def main():
    need((BIN, "make build"), (MODEL, "scripts/install-tools.sh test"))
    with tempfile.TemporaryDirectory(prefix="lb-api-") as work, Serve(*smol_data(work)) as server:
        port, key = server.port, server.key("bench")

        def poll_card():
            t = time.monotonic()
            server.post("/api/brain", {})
            return time.monotonic() - t

        # Warm: the model is loaded once before the crowd arrives, as on a server in use.
        warm = threading.Event(); warm.set()
        stream_one(port, key, warm, [])
        results, polls, stop = [], [], threading.Event()
        start = threading.Event()
        threads = [threading.Thread(target=stream_one, args=(port, key, start, results)) for _ in range(CLIENTS)]
        for t in threads:
            t.start()

        def poller():
            while not stop.is_set():
                polls.append(poll_card()); time.sleep(0.1)
        p = threading.Thread(target=poller); p.start()
        began = time.monotonic()
        start.set()
        for t in threads:
            t.join(timeout=320)
        hung = sum(t.is_alive() for t in threads)
        wall = time.monotonic() - began
        stop.set(); p.join()
        ok = [r for r in results if r["status"] == 200 and r.get("done")]
        refused = [r for r in results if r["status"] == 429]
        other = [r for r in results if r not in ok and r not in refused]
        ttft = [r["ttft"] * 1000 for r in ok]
        tps = [r["tps"] for r in ok if r["tps"] == r["tps"]]
        print(f"{CLIENTS} streamed requests of {TOKENS} tokens at once, in {wall:.1f} s:")
        print(f"  completed {len(ok)}, told 429 {len(refused)} (Retry-After {refused[0]['retry_after'] if refused else '-'} s), other {len(other)}, hung {hung}")
        print(f"  time to first token (queue included): p50 {pct(ttft, 50):.0f} ms, p99 {pct(ttft, 99):.0f} ms, min {min(ttft):.0f} ms")
        print(f"  generation per answer: median {statistics.median(tps):.1f} tokens/s")
        print(f"  card poll (POST /api/brain) under load, {len(polls)} polls: p50 {pct(polls, 50) * 1000:.1f} ms, "
              f"p99 {pct(polls, 99) * 1000:.1f} ms, max {max(polls) * 1000:.1f} ms")
        if other or hung or len(ok) + len(refused) != CLIENTS:
            sys.exit(f"not every request completed or got 429: {other}")


if __name__ == "__main__":
    main()
