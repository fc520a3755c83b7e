#!/usr/bin/env python3
"""make bench-brain: the brain's speed against llama.cpp's own tools, same model, same threads.

Three rounds, alternating, each with a fresh process: llama.cpp's llama-completion and
llama-bench (built by scripts/install-tools.sh bench from the same llama.cpp source), then
`localbrain run --verbose`, then the card's path (a fresh `localbrain serve`, signed in, one
POST /api/chat read as a stream). Each gets a prompt of about 500 tokens and generates 128 at a
4K context. Printed: prompt and generation tokens/s, time to first token, peak RSS; medians.

Environment: BENCH_BIN (default target/release/localbrain), BENCH_THREADS (default: what localbrain picks, physical cores - 1), BENCH_RUNS
(default 3), LOCALBRAIN_TEST_MODEL (default: the cached SmolLM2-135M), BENCH_GPU=1: every layer on
the GPU (llama.cpp's tools get -ngl 99, localbrain --gpu-layers auto, which puts all of a model this
size there) and the GPU memory each takes (nvidia-smi's memory.used, peak over the idle figure);
without it everything runs on the CPU (--gpu-layers 0, -ngl 0) whatever the build.
"""
import json, os, re, statistics, subprocess, sys, tempfile, threading, time, urllib.request

from lbserve import BIN, MODEL, MODEL_ID, Serve, need, smol_data

TOOLS = os.environ.get("LOCALBRAIN_TOOLS", os.path.expanduser("~/.cache/localbrain/tools"))
LLAMA_BIN = os.path.join(TOOLS, "llama.cpp-11434.0.0", "bin")
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
GEN = 128
CTX = 4096
PARAGRAPH = (
    "The lighthouse keeper climbed the spiral stairs every evening at dusk, carrying a tin of oil, a cloth "
    "and a small notebook in which he wrote the colour of the sky, the height of the waves and the names "
    "of the ships that passed. "
)
PROMPT = "Read these notes, then write a long story that continues them.\n\n" + PARAGRAPH * 11


def physical_cores():
    cores = set()
    try:
        with open("/proc/cpuinfo") as f:
            phys = core = None
            for line in f:
                if line.startswith("physical id"):
                    phys = line.split(":")[1].strip()
                elif line.startswith("core id"):
                    core = line.split(":")[1].strip()
                    cores.add((phys, core))
    except OSError:
        pass
    return len(cores) or os.cpu_count() or 1


THREADS = int(os.environ.get("BENCH_THREADS", max(1, physical_cores() - 1)))
GPU = os.environ.get("BENCH_GPU") == "1"
NGL = ["-ngl", "99" if GPU else "0"]
GPU_LAYERS = ["--gpu-layers", "auto" if GPU else "0"]


def vram_used_mb():
    """The first GPU's memory in use (nvidia-smi), or None without one."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=5).stdout
        return float(out.split()[0])
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
        return None


class Vram:
    """Samples the GPU's memory every 50 ms while it is open: .peak_mb over the figure at the start."""

    def __enter__(self):
        self.base, self.peak, self.done = vram_used_mb(), None, threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)
        if GPU and self.base is not None:
            self.thread.start()
        return self

    def sample(self):
        while not self.done.wait(0.05):
            used = vram_used_mb()
            if used is not None:
                self.peak = max(self.peak or used, used)

    def __exit__(self, *exc):
        self.done.set()
        if self.thread.is_alive():
            self.thread.join()
        self.peak_mb = None if self.peak is None else self.peak - self.base


def timed(cmd, **kw):
    """Runs cmd under /usr/bin/time -v: (stdout, stderr, peak RSS in MB)."""
    with Vram() as vram:
        p = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1)) / 1024
    LAST_VRAM[0] = vram.peak_mb
    return p.stdout, p.stderr, rss


# The GPU memory the last timed command took (MB over idle), when BENCH_GPU=1.
LAST_VRAM = [None]


def llama_completion(prompt_file):
    out, err, rss = timed([
        os.path.join(LLAMA_BIN, "llama-completion"), "-m", MODEL, "-f", prompt_file, "-n", str(GEN),
        "-t", str(THREADS), "-tb", str(THREADS), "-c", str(CTX), "--temp", "0", "-no-cnv", "--ignore-eos",
        "--no-warmup", *NGL,
    ], stdin=subprocess.DEVNULL)
    load = float(re.search(r"load time =\s+([\d.]+) ms", err).group(1))
    pm = re.search(r"prompt eval time =\s+([\d.]+) ms /\s+(\d+) tokens", err)
    em = re.search(r"\beval time =\s+([\d.]+) ms /\s+(\d+) runs", err)
    prompt_ms, prompt_tokens = float(pm.group(1)), int(pm.group(2))
    eval_ms, runs = float(em.group(1)), int(em.group(2))
    return {
        "prompt_tokens": prompt_tokens,
        "prompt_tps": prompt_tokens / prompt_ms * 1000,
        "gen_tokens": runs,
        "gen_tps": runs / eval_ms * 1000,
        # llama.cpp's "load time" runs from the start to the end of the prompt's evaluation
        # (it overlaps "prompt eval time"): what the person waits before the first token.
        "ttft_ms": load,
        "rss_mb": rss,
        "vram_mb": LAST_VRAM[0],
    }


def llama_bench(prompt_tokens):
    """llama.cpp's own benchmark: the prompt alone, then 128 tokens generated after a context as
    long as the prompt (-d), as a chat reply is: each new token attends over the prompt too."""
    tool = os.path.join(LLAMA_BIN, "llama-bench")
    common = ["-m", MODEL, "-t", str(THREADS), "-r", "1", "-o", "json", *NGL]
    out, _, rss_p = timed([tool, *common, "-p", str(prompt_tokens), "-n", "0"])
    pp, vram_p = json.loads(out)[0]["avg_ts"], LAST_VRAM[0]
    out, _, rss_g = timed([tool, *common, "-p", "0", "-n", str(GEN), "-d", str(prompt_tokens)])
    tg, vram_g = json.loads(out)[0]["avg_ts"], LAST_VRAM[0]
    vram = max((v for v in (vram_p, vram_g) if v is not None), default=None)
    return {"prompt_tps": pp, "gen_tps": tg, "rss_mb": max(rss_p, rss_g), "vram_mb": vram}


def localbrain_run(data, env):
    out, err, rss = timed([
        BIN, "--data-dir", data, "--threads", str(THREADS), "--context", str(CTX), *GPU_LAYERS, "run", "--verbose",
        "--temperature", "0", "--max-tokens", str(GEN), MODEL_ID, PROMPT,
    ], env=env, stdin=subprocess.DEVNULL)
    g = re.search(r"^(\d+) tokens, ([\d.]+) tokens/s", err, re.M)
    p = re.search(r"prompt: (\d+) tokens(?: \(\d+ reused from the last turn\))?, ([\d.]+) tokens/s; first token after (\d+) ms; (.*)", err)
    RAN_ON[0] = p.group(4)
    return {
        "prompt_tokens": int(p.group(1)), "prompt_tps": float(p.group(2)),
        "gen_tokens": int(g.group(1)), "gen_tps": float(g.group(2)),
        "ttft_ms": float(p.group(3)), "rss_mb": rss, "vram_mb": LAST_VRAM[0],
    }


# Where `localbrain run` said the model ran ("on CUDA0 NVIDIA H200: 30/30 layers").
RAN_ON = [None]


def card_path(data, env):
    """A fresh server; sign in; one streamed chat, timed from the request to the first piece."""
    with Vram() as vram:
        row = card_chat(data, env)
    row["vram_mb"] = vram.peak_mb
    return row


def card_chat(data, env):
    # One slot, as the CLI and llama-completion run: the same memory for the same work.
    with Serve(data, env, ["--threads", str(THREADS), "--context", str(CTX), "--parallel", "1", *GPU_LAYERS]) as server:
        body = json.dumps({
            "model_id": MODEL_ID, "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": GEN, "temperature": 0,
        }).encode()
        req = urllib.request.Request(
            f"{server.base}/api/chat", data=body, method="POST",
            headers={"Content-Type": "application/json", "Cookie": server.cookie},
        )
        sent = time.monotonic()
        first = None
        stats = None
        with urllib.request.urlopen(req) as resp:
            for line in resp:
                event = json.loads(line)
                if event["type"] == "piece" and first is None:
                    first = time.monotonic()
                elif event["type"] == "done":
                    stats = event["stats"]
                elif event["type"] == "error":
                    sys.exit(f"chat failed: {event['error']}")
        with open(f"/proc/{server.pid}/status") as f:
            rss = int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1)) / 1024
        return {
            "prompt_tokens": stats["prompt_tokens"], "prompt_tps": stats["prompt_tokens_per_second"],
            "gen_tokens": stats["generated_tokens"], "gen_tps": stats["tokens_per_second"],
            "ttft_ms": (first - sent) * 1000, "rss_mb": rss,
            # What the card's path adds to the brain's own time to first token for the same
            # request (HTTP, session, server function, response stream): the two TTFTs above
            # come from separate runs, whose prompt speed drifts with this VM's.
            "overhead_ms": (first - sent) * 1000 - stats["first_token_ms"],
        }


def main():
    need((BIN, "make build"), (os.path.join(LLAMA_BIN, "llama-bench"), "scripts/install-tools.sh bench"),
         (MODEL, "scripts/install-tools.sh bench"))
    results = {"llama-completion": [], "llama-bench": [], "localbrain run": [], "card (POST /api/chat)": []}
    with tempfile.TemporaryDirectory(prefix="lb-bench-brain-") as tmp:
        data, env = smol_data(tmp)
        prompt_file = os.path.join(tmp, "prompt.txt")
        with open(prompt_file, "w") as f:
            f.write(PROMPT)
        for r in range(RUNS):
            results["llama-completion"].append(llama_completion(prompt_file))
            run = localbrain_run(data, env)
            results["localbrain run"].append(run)
            results["llama-bench"].append(llama_bench(run["prompt_tokens"]))
            results["card (POST /api/chat)"].append(card_path(data, env))
            print(f"round {r + 1}/{RUNS} done", file=sys.stderr)

    def med(rows, k):
        values = [row[k] for row in rows if row.get(k) is not None]
        return statistics.median(values) if values else None

    fmt = lambda v, spec: "-".rjust(int(spec.split(".")[0])) if v is None else format(v, spec)
    where = f"every layer on the GPU (localbrain: {RAN_ON[0]})" if GPU else f"the CPU ({RAN_ON[0]})"
    print(f"\nSmolLM2-135M-Instruct Q4_1, {THREADS} thread(s), context {CTX}, {GEN} generated tokens, "
          f"medians of {RUNS} alternating runs, on {where}")
    print(f"{'':24} {'prompt tok':>10} {'prompt t/s':>10} {'gen tok':>8} {'gen t/s':>8} {'TTFT ms':>8} {'peak RSS MB':>11}"
          f" {'VRAM MB':>8}")
    for name, rows in results.items():
        print(f"{name:24} {fmt(med(rows, 'prompt_tokens'), '10.0f')} {fmt(med(rows, 'prompt_tps'), '10.1f')} "
              f"{fmt(med(rows, 'gen_tokens'), '8.0f')} {fmt(med(rows, 'gen_tps'), '8.1f')} "
              f"{fmt(med(rows, 'ttft_ms'), '8.0f')} {fmt(med(rows, 'rss_mb'), '11.0f')} {fmt(med(rows, 'vram_mb'), '8.0f')}")
    ref = med(results["llama-bench"], "gen_tps")
    ours = med(results["localbrain run"], "gen_tps")
    card = med(results["card (POST /api/chat)"], "gen_tps")
    ttft_cli = med(results["localbrain run"], "ttft_ms")
    ttft_card = med(results["card (POST /api/chat)"], "ttft_ms")
    size_mb = os.path.getsize(MODEL) / 2**20
    print(f"\ngeneration vs llama-bench: localbrain run {ours / ref:.2f}x, card {card / ref:.2f}x (target >= 0.95x)")
    overhead = med(results["card (POST /api/chat)"], "overhead_ms")
    print(f"card TTFT - CLI TTFT: {ttft_card - ttft_cli:+.0f} ms over separate runs; the card's path adds "
          f"{overhead:.0f} ms to the brain's own first-token time of the same request (target within 50 ms)")
    for name in ("localbrain run", "card (POST /api/chat)"):
        rss = med(results[name], "rss_mb")
        print(f"{name} peak RSS {rss:.0f} MB vs model {size_mb:.0f} MB + 300 MB = {size_mb + 300:.0f} MB")


if __name__ == "__main__":
    main()
