"""Benchmark: real-time factor of `voicereplay call` with the embedded offline models.

    python bench/replay.py                          # demo + 5-minute call, local + recorded, 3 runs
    python bench/replay.py --calls demo --models recorded --runs 1

RTF = wall seconds of the replay (``pipeline.replaying.replay_call``: STT → LLM → TTS on the
virtual clock, tracks written, replay stored) / seconds of the original call. Two calls: the
demo call (fixtures/demo, 46 s, 5 caller turns) and a 5-minute call built here from the demo's
JSON and audio (15 caller turns, each two demo caller utterances; the opening plus 15 agent
replies, each three demo agent utterances; the last exchange is the demo's goodbye; the demo's
own gaps, and its issue_refund tool call before every reply that opens with the refund
sentence), written as a files-provider directory (Vapi call JSON with consistent times,
stereo/customer/agent/mixed WAVs, the assistant sidecar). ``--pairs``/``--turn-units`` make
other shapes, e.g. ``--pairs 33 --turn-units 1 1``: 5 minutes at the demo's turn density.

Two LLMs: ``local`` (SmolLM2-135M in-process, ``model.max_tokens=60``, fixed seed) and
``recorded`` (the baseline's replies: the audio path alone). STT is faster-whisper tiny.en, TTS
piper, as ``voicereplay call`` picks them. Every run is a fresh process with a fresh
VOICEREPLAY_HOME: the call is imported, the models are loaded (timed apart: "load s"), then one
replay is timed. Each run waits until the machine is idle, and is redone if other processes
took more than 5 % of a core meanwhile (this VM is shared). Stage seconds are sums over the
replay's turns (``ReplayTurn.timings``): STT over the caller turns, LLM per reply (tool rounds
included), TTS over the agent turns.
Prints Markdown tables for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DEMO_DIR = REPO / "fixtures" / "demo"
DEMO = DEMO_DIR / "demo-refund.json"
TARGET_RTF = 0.25
PAUSE = 0.4  # seconds between two demo utterances joined into one turn
PAD = 0.1  # seconds of the demo's audio kept either side of an utterance
OTHER_LIMIT = 0.05  # a run is redone if other processes took more CPU-s than this x its wall s


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_long_call(dest: Path, pairs: int = 15, units: tuple[int, int] = (2, 3)) -> Path:
    """A Vapi call of ``pairs`` exchanges made of the demo's turns (``units``: demo utterances
    per caller turn and per agent reply); returns its files-provider directory."""
    import numpy as np

    from voicereplay.audio import Audio, cut, load_channels, mix, write_wav

    demo = json.loads(DEMO.read_text())
    started = _utc(demo["startedAt"])
    t0 = started.timestamp() * 1000
    tracks = {"user": load_channels(DEMO_DIR / "demo-refund.customer.wav")[0],
              "bot": load_channels(DEMO_DIR / "demo-refund.agent.wav")[0]}
    rate = tracks["user"].rate
    spoken = [m for m in demo["messages"] if m["role"] in ("user", "bot")]
    system = next(m for m in demo["messages"] if m["role"] == "system")
    tool_call = next(m for m in demo["messages"] if m["role"] == "tool_calls")
    tool_result = next(m for m in demo["messages"] if m["role"] == "tool_call_result")

    def span(m: dict[str, Any]) -> tuple[float, float]:
        return (m["time"] - t0) / 1000, (m["endTime"] - t0) / 1000

    def clip(m: dict[str, Any]) -> Audio:
        start, end = span(m)
        return cut(tracks[m["role"]], start - PAD, end + PAD)

    # gaps before each caller turn / each reply in the demo (end of speech before → start)
    gaps = [span(m)[0] - span(spoken[i - 1])[1] for i, m in enumerate(spoken) if i]
    caller_gaps, reply_gaps = gaps[0::2], gaps[1::2]
    opening, callers, replies = spoken[0], spoken[1::2], spoken[2::2]
    refund = replies.index(next(m for m in replies if "refund" in m["message"]))

    placed: list[tuple[str, float, Audio]] = []
    messages: list[dict[str, Any]] = [dict(system)]
    cursor = 0.0

    def turn(role: str, pieces: list[dict[str, Any]], gap: float) -> None:
        nonlocal cursor
        start = cursor + gap
        at = start
        for i, piece in enumerate(pieces):
            a, b = span(piece)
            placed.append((role, at - PAD, clip(piece)))
            at += (b - a) + (0.0 if i == len(pieces) - 1 else PAUSE)
        cursor = at
        message = {"role": role, "time": round(t0 + start * 1000),
                   "endTime": round(t0 + at * 1000),
                   "message": " ".join(p["message"] for p in pieces),
                   "secondsFromStart": round(start, 3), "duration": round((at - start) * 1000)}
        if role == "bot":
            message["source"] = ""
        messages.append(message)

    turn("bot", [opening], span(opening)[0])
    cu, au = units
    for i in range(pairs):
        last = i == pairs - 1
        said = [callers[-1]] if last else [callers[(cu * i + k) % 4] for k in range(cu)]
        turn("user", said, caller_gaps[-1 if last else (cu * i) % 4])
        order = [len(replies) - 1] if last else [(au * i + k) % 4 for k in range(au)]
        gap = reply_gaps[-1 if last else order[0]]
        if order[0] == refund:  # the demo's tool call (same arguments: its recorded result)
            ms = t0 + (cursor + gap) * 1000
            ident = f"call_bench_{i}"
            messages.append({**tool_call, "time": round(ms - 949),
                             "secondsFromStart": round(cursor + gap - 0.949, 3),
                             "toolCalls": [{**tool_call["toolCalls"][0], "id": ident}]})
            messages.append({**tool_result, "time": round(ms - 500), "toolCallId": ident,
                             "secondsFromStart": round(cursor + gap - 0.5, 3)})
        turn("bot", [replies[j] for j in order], gap)
    demo_end = (_utc(demo["endedAt"]) - started).total_seconds()
    total = cursor + demo_end - span(spoken[-1])[1]  # the demo's silence after its last words
    length = int(np.ceil(total * rate))
    audio = {r: np.zeros(length, dtype=np.float32) for r in ("user", "bot")}
    for role, at, piece in placed:
        first = max(0, round(at * rate))
        samples = piece.samples[: length - first]
        audio[role][first:first + len(samples)] += samples
    customer, agent = Audio(audio["user"], rate), Audio(audio["bot"], rate)

    call = json.loads(DEMO.read_text())
    call["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"voicereplay-bench-{pairs}-{cu}-{au}"))
    call["endedAt"] = _iso(started + timedelta(seconds=total))
    transcript = "\n".join(f"{'AI' if m['role'] == 'bot' else 'User'}: {m['message']}"
                           for m in messages if m["role"] in ("user", "bot"))
    call.update(messages=messages, transcript=transcript)
    call["artifact"].update(messages=messages, transcript=transcript)
    for stale in ("messagesOpenAIFormatted", "performanceMetrics"):
        call["artifact"].pop(stale, None)
    dest.mkdir(parents=True, exist_ok=True)
    stem = "long-call"
    (dest / f"{stem}.json").write_text(json.dumps(call, indent=2))
    shutil.copy(DEMO_DIR / "demo-refund.assistant.json", dest / f"{stem}.assistant.json")
    write_wav(dest / f"{stem}.stereo.wav", [customer, agent])
    write_wav(dest / f"{stem}.customer.wav", [customer])
    write_wav(dest / f"{stem}.agent.wav", [agent])
    write_wav(dest / f"{stem}.mixed.wav", [mix([customer, agent])])
    return dest


def child(directory: Path, model: str, seed: int, max_tokens: int) -> None:
    """One fresh process: import the call, load the models, time one replay; print JSON."""
    from voicereplay import pipeline
    from voicereplay.pipeline.replaying import ReplayOptions, build_llm, replay_call
    from voicereplay.providers.files import FilesProvider
    from voicereplay.simulate.stages import STT, TTS
    from voicereplay.store import Store

    with tempfile.TemporaryDirectory() as home:
        os.environ["VOICEREPLAY_HOME"] = home
        store = Store.from_settings()
        with FilesProvider(directory) as provider:
            outcomes = pipeline.import_calls(store, provider)
        if len(outcomes) != 1 or not outcomes[0].ok:
            raise SystemExit(f"import failed: {outcomes}")
        call = store.get_call(outcomes[0].call_id or "", outcomes[0].provider)
        base = store.snapshot_for_call(call.call_id, call.provider)
        assert base is not None, "the call has no snapshot"
        snapshot = pipeline.apply_overrides(
            base, pairs=[f"model.max_tokens={max_tokens}", f"model.seed={seed}"])
        options = ReplayOptions(model=model, seed=seed)

        started = time.perf_counter()  # the models are cached per process: load them first
        for stage in (STT.create(options.stt), build_llm(call, snapshot, options),
                      TTS.create(options.tts), TTS.create(options.caller_tts)):
            stage.load()
        load = time.perf_counter() - started

        marks: dict[str, float] = {}

        def progress(message: str) -> None:
            marks.setdefault(message.split()[0], time.perf_counter() - started)

        cpu, started = time.process_time(), time.perf_counter()
        [replay] = replay_call(store, call, snapshot, options=options, on_progress=progress)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu

    users = [t for t in replay.turns if t.role == "user"]
    agents = [t for t in replay.turns if t.role == "agent"]
    llm: dict[int, float] = {}  # per reply: its last text's llm_total covers every round
    answered = 0
    for t in replay.turns:
        answered += t.role == "user"
        if t.role == "agent" and t.timings and t.timings.llm_total is not None:
            llm[answered] = max(llm.get(answered, 0.0), t.timings.llm_total)
    responses = [t.timings.response for t in agents
                 if t.timings and t.timings.response is not None]
    print(json.dumps({
        "load": load, "wall": wall, "cpu": cpu, "engine_wall": replay.wall_seconds,
        "original": call.duration, "replayed": replay.duration,
        "stt": sum(t.timings.stt or 0.0 for t in users if t.timings),
        "llm": sum(llm.values()),
        "tts": sum(t.timings.tts_total or 0.0 for t in agents if t.timings),
        "response": statistics.median(responses) if responses else None,
        # transcribing → laying out → writing: the stages' part of the wall time
        "stages_wall": marks["writing"] - marks["transcribing"],
        "caller_turns": len(call.turns_by("user")), "user_turns": len(users),
        "agent_turns": len(agents),
        "original_audio": sum(t.origin == "original-audio" for t in users),
        "agent_words": sum(len(t.text.split()) for t in agents),
        "ended": replay.ended_reason, "warnings": replay.warnings,
    }))


def _busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all processes, from /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, _steal = fields
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def _children_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _commit() -> str:
    def git(*argv: str) -> str:
        out = subprocess.run(["git", "-C", str(REPO), *argv], capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + (" + local changes" if git("status", "--porcelain", "voicereplay") else "")


def _wait_idle(limit: float = 900.0) -> None:
    """Wait until other processes leave the CPU (under 0.1 core over 5 s)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        busy = _busy_seconds()
        time.sleep(5)
        if _busy_seconds() - busy < 0.5:
            return
    print("# warning: the machine is still busy; measuring anyway", file=sys.stderr)


def _run(directory: Path, model: str, args: argparse.Namespace) -> dict[str, Any]:
    """One child process (once the machine is idle), with the CPU others took meanwhile."""
    _wait_idle()
    busy, own = _busy_seconds(), _children_seconds()
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(directory), "--model", model,
         "--seed", str(args.seed), "--max-tokens", str(args.max_tokens)],
        capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{directory.name}/{model} failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["other_cpu"] = max(0.0, (_busy_seconds() - busy) - (_children_seconds() - own))
    return result


def _mid(values: list[float], digits: int = 1) -> str:
    low, high = min(values), max(values)
    return f"{statistics.median(values):.{digits}f} ({low:.{digits}f}–{high:.{digits}f})"


def report(label: str, model: str, runs: list[dict[str, Any]]) -> tuple[str, str]:
    """One row of each table."""
    def col(key: str) -> list[float]:
        return [float(r[key]) for r in runs]

    rtf = [r["wall"] / r["original"] for r in runs]
    stages = [r["stt"] + r["llm"] + r["tts"] for r in runs]
    overlap = [s - r["stages_wall"] for s, r in zip(stages, runs, strict=True)]
    busy = [r["cpu"] / r["wall"] for r in runs]
    meets = ("yes" if max(rtf) <= TARGET_RTF else
             "no" if min(rtf) > TARGET_RTF else "median only" if
             statistics.median(rtf) <= TARGET_RTF else "no (fastest run only)")
    first = runs[0]
    turns = f"{first['user_turns']}/{first['agent_turns']}"
    main = (f"| {label} | {model} | {first['original']:.1f} | {len(runs)} | "
            f"{statistics.median(col('load')):.1f} | {_mid(col('wall'))} | "
            f"**{statistics.median(rtf):.3f}** | {min(rtf):.3f}–{max(rtf):.3f} | {meets} | "
            f"{_mid(col('replayed'))} | {turns} | {first['ended']} |")
    stage = (f"| {label} | {model} | {_mid(col('stt'))} | {_mid(col('llm'))} | "
             f"{_mid(col('tts'))} | {_mid(stages)} | {_mid(col('stages_wall'))} | "
             f"{_mid(overlap)} | {statistics.median(busy):.2f} | "
             f"{_mid([r['response'] for r in runs], 2)} |")
    return main, stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", nargs="+", choices=["demo", "long"], default=["demo", "long"])
    parser.add_argument("--models", nargs="+", choices=["local", "recorded"],
                        default=["local", "recorded"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-tokens", type=int, default=60)
    parser.add_argument("--pairs", type=int, default=15, help="caller turns of the long call")
    parser.add_argument("--turn-units", type=int, nargs=2, default=[2, 3],
                        metavar=("CALLER", "AGENT"),
                        help="demo utterances per caller turn / agent reply of the long call")
    parser.add_argument("--keep", type=Path, help="build the long call here and keep it")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.model, args.seed, args.max_tokens)
        return

    with tempfile.TemporaryDirectory() as tmp:
        dirs = {"demo": DEMO_DIR}
        if "long" in args.calls:
            dirs["long"] = build_long_call(args.keep or Path(tmp) / "long", args.pairs,
                                           tuple(args.turn_units))
        print(f"# replay benchmark — {datetime.now(UTC):%Y-%m-%d}, {platform.node()}, "
              f"{os.cpu_count()} cores, Python {platform.python_version()}, "
              f"voicereplay at {_commit()}")
        print(f"# command: python bench/replay.py --calls {' '.join(args.calls)} --models "
              f"{' '.join(args.models)} --runs {args.runs} --seed {args.seed} "
              f"--max-tokens {args.max_tokens} --pairs {args.pairs} "
              f"--turn-units {' '.join(map(str, args.turn_units))}\n", flush=True)
        rows: list[tuple[str, str]] = []
        worst_other, discarded = 0.0, 0
        for name in args.calls:
            for model in args.models:
                runs: list[dict[str, Any]] = []
                while len(runs) < args.runs:
                    result = _run(dirs[name], model, args)
                    print(f"# {name}/{model}: " + json.dumps(result), file=sys.stderr,
                          flush=True)
                    if result["other_cpu"] > max(1.0, OTHER_LIMIT * result["wall"]):
                        discarded += 1  # another process took the CPU: run it again
                        if discarded > 3 * args.runs:
                            raise SystemExit("the machine is too busy to measure")
                        continue
                    runs.append(result)
                    worst_other = max(worst_other, result["other_cpu"])
                label = (f"demo ({runs[0]['caller_turns']} caller turns)" if name == "demo"
                         else f"{runs[0]['original'] / 60:.0f}-min "
                              f"({runs[0]['caller_turns']} caller turns)")
                rows.append(report(label, model, runs))
    print("| call | LLM | original s | runs | load s | wall s | RTF | RTF min–max "
          f"| RTF ≤ {TARGET_RTF}? | replayed s | turns user/agent | ended |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|")
    for main_row, _ in rows:
        print(main_row)
    print("\nStage seconds, median (min–max) over the runs:\n")
    print("| call | LLM | STT s | LLM s | TTS s | Σ stages s | stages' wall s | overlap s "
          "| busy cores | response p50 s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for _, stage_row in rows:
        print(stage_row)
    print(f"\nOther processes used at most {worst_other:.1f} CPU-s during a kept run; "
          f"{discarded} run(s) discarded because others used more.")


if __name__ == "__main__":
    main()
