"""A background job with the real embedded models (faster-whisper tiny.en, SmolLM2 through
llama.cpp, piper), and a worker that keeps them loaded between jobs.

The worker's job path is driven in-process (the same ``huey.execute`` a consumer thread runs),
so the test can look at the loaded models: two jobs, one load of each model.
"""

from __future__ import annotations

import pytest

from voicereplay import pipeline
from voicereplay.config import Settings
from voicereplay.pipeline import CallRef, ReplayRequest
from voicereplay.pipeline.jobs import Worker
from voicereplay.pipeline.queue import JobQueue
from voicereplay.simulate.backends import llama_cpp, whisper
from voicereplay.store import Store

DEMO_CALL = "dfed92e7-b86e-5139-835c-d451a4f9d515"


@pytest.mark.models
def test_a_warm_worker_runs_real_replays_and_loads_each_model_once() -> None:
    settings = Settings.from_env()
    store = Store.from_settings(settings)
    queue = JobQueue(store, settings, worker=Worker(settings))
    ref = CallRef(call_id=DEMO_CALL, directory=pipeline.demo_dir())
    jobs = [queue.submit(ReplayRequest(call=ref, model="local", seed=seed,
                                       set=["model.max_tokens=40"]))[0] for seed in (1, 2)]
    loaded: list[tuple[set[int], set[int]]] = []
    for _ in jobs:
        task = queue.huey.dequeue()
        assert task is not None
        assert queue.huey.execute(task) == {"status": "completed"}
        loaded.append(({id(m) for m in whisper._MODELS.values()},
                       {id(m) for m, _lock in llama_cpp._models.values()}))
    # the second job loaded nothing: it reused the models the first one loaded (other tests
    # of this session may have loaded more, so the sets are compared, not counted)
    assert loaded[0] == loaded[1] and all(loaded[0])
    for job in jobs:
        done = store.jobs.get(job.id)
        assert done.status == "COMPLETED" and done.attempt == 1
        [replay_id] = done.replay_ids
        replay = store.replays.get(replay_id)
        assert replay.job_id == job.id and replay.backends.llm == "llama-cpp"
        heard = [t.text for t in replay.turns if t.role == "user"]
        assert any("headphones" in text.lower() for text in heard), heard  # real STT
        agent = [t.text for t in replay.turns if t.role == "agent" and t.text.strip()]
        assert len(agent) >= 2  # the real LLM answered
        assert (store.artifacts.root / "replays" / f"{job.id[:12]}a1-0" / "report.json").exists()
