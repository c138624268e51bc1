"""Many requests at once: ``batch`` runs them on a slot pool, ``batch_file`` on JSONL.

``parallel`` requests generate together, each on its own thread in its own
slot (slots.py): their prompts are evaluated one by one, and their decode
steps run as one batched forward, so N replies cost little more per step
than one. Answers come back in request order.

Order and crash safety (``batch_file``): each answer is written, and
flushed to disk, as soon as it and every answer before it are done, so the
output file is at every moment a correct prefix of the final one, in input
order. A rerun (after a kill or a crash) reads that prefix and generates
only the rest. The price: answers that finish while an earlier one is still
generating wait in memory, and a crash loses them along with the ones in
progress; they are at most the requests started after the oldest
unfinished one. Writing in finishing order with the index and sorting at
the end would lose less but give an out-of-order file for the whole run
(and none at all on stdout): a file that is always in order, readable and
resumable as it grows, was judged worth more.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .batch_io import BatchRequest, BatchResult, read_done, read_numbered_requests
from .errors import ChordError
from .events import Done, ErrorEvent, Notice
from .model import Model
from .sampling import SamplerSettings
from .session import ChatSession
from .slots import SlotPool

MAX_PARALLEL = 64


def batch(model: Model, requests: Iterable[BatchRequest | ChordError], *, parallel: int = 4,
          n_ctx: int | None = None, template: str | None = None, model_name: str | None = None,
          start: int = 0) -> Iterator[BatchResult]:
    """Answer ``requests``, ``parallel`` at a time; yields each answer in request
    order as soon as it and all before it are done. A request that fails
    (or is given as a ``ChordError``) is answered with its error and the rest
    go on. ``n_ctx``: each slot's context (default: the model's, at most
    4096); ``template``: a fallback template name or .jinja file instead of
    the model's; ``start``: index of the first request (a resumed file's).
    Closing the iterator early cancels what is still generating."""
    todo = _checked_requests(requests)
    if todo:
        yield from _answers(_pool(model, parallel, len(todo), n_ctx, template, model_name), todo, start)


def _checked_requests(requests: Iterable[BatchRequest | ChordError]) -> list[BatchRequest | ChordError]:
    if isinstance(requests, (str, bytes, dict)):
        raise ChordError(f"requests is a {type(requests).__name__}, not a list of BatchRequest")
    todo = list(requests)
    for i, request in enumerate(todo):
        if not isinstance(request, (BatchRequest, ChordError)):
            raise ChordError(f"requests[{i}] is a {type(request).__name__}, not a BatchRequest "
                             "(BatchRequest.from_json turns a JSONL line's dict into one)")
    return todo


def _pool(model: Model, parallel: int, n_requests: int, n_ctx: int | None, template: str | None,
          model_name: str | None) -> SlotPool:
    if not 1 <= parallel <= MAX_PARALLEL:
        raise ChordError(f"parallel must be between 1 and {MAX_PARALLEL}, got {parallel}")
    return SlotPool(model, min(parallel, n_requests), n_ctx, template_override=template, model_name=model_name)


def _answers(pool: SlotPool, todo: list[BatchRequest | ChordError], start: int,
             sources: list[str] | None = None) -> Iterator[BatchResult]:
    run = _Run(pool, todo, start, sources)
    # one thread per slot: each slot's decode steps wait for the others' (slots.py)
    workers = [threading.Thread(target=run.work, name=f"chord-batch-{i}", daemon=True)
               for i in range(len(pool.sessions))]
    for w in workers:
        w.start()
    try:
        for i in range(len(todo)):
            yield run.wait_for(i)
    finally:
        run.cancel.set()  # closed early (or interrupted): stop what is generating
        for w in workers:
            w.join()


class _Run:
    """The requests, the answers as they come, and the workers' shared next index."""

    def __init__(self, pool: SlotPool, requests: list[BatchRequest | ChordError], start: int,
                 sources: list[str] | None = None):
        self.pool = pool
        self.requests = requests
        self.start = start
        self.sources = sources  # "FILE: line N" of each request, put before an error the engine raised
        self.cancel = threading.Event()
        self._results: dict[int, BatchResult] = {}
        self._next = 0
        self._cond = threading.Condition()

    def _take(self) -> int | None:
        with self._cond:
            if self.cancel.is_set() or self._next >= len(self.requests):
                return None
            i, self._next = self._next, self._next + 1
            return i

    def work(self) -> None:
        while (i := self._take()) is not None:
            try:
                result = self._answer(i)
            except BaseException as err:  # the caller waits for every index: it must get an answer, always
                result = BatchResult(index=self.start + i, error=f"engine error: {type(err).__name__}: {err}")
            with self._cond:
                self._results[i] = result
                self._cond.notify_all()

    def wait_for(self, i: int) -> BatchResult:
        with self._cond:
            self._cond.wait_for(lambda: i in self._results)
            return self._results.pop(i)

    def _answer(self, i: int) -> BatchResult:
        request, index = self.requests[i], self.start + i
        if isinstance(request, ChordError):
            return BatchResult(index=index, id=getattr(request, "id", None), error=str(request))
        where = f"{self.sources[i]}: " if self.sources else ""
        try:
            return answer(self.pool, request, index, self.cancel)
        except ChordError as err:
            return BatchResult(index=index, id=request.id, error=f"{where}{err}")
        except Exception as err:  # a bug answers its line, never the batch
            return BatchResult(index=index, id=request.id, error=f"{where}engine error: {type(err).__name__}: {err}")


def answer(pool: SlotPool, request: BatchRequest, index: int, cancel: threading.Event) -> BatchResult:
    """One request through a free slot of ``pool``: the same events ``chord-chat run`` gets."""
    t0 = time.perf_counter()
    prompt_ids = _prompt_ids(pool, request)
    with pool.acquire(prompt_ids) as session:
        if request.messages is not None:
            events = session.stream(list(request.messages), request.settings, cancel)
        else:
            events = session.complete(request.prompt, request.settings, cancel)
        done, notices = None, []
        for event in events:
            if isinstance(event, Done):
                done = event
            elif isinstance(event, Notice):
                notices.append(event.message)
            elif isinstance(event, ErrorEvent):
                raise ChordError(event.message)
    if done is None or done.reason == "cancelled":
        raise ChordError("cancelled before it finished")
    s = done.stats
    return BatchResult(
        index=index, id=request.id, text=done.text, finish_reason=done.reason, prompt_tokens=s.prompt_tokens,
        completion_tokens=len(done.token_ids), token_ids=done.token_ids, seed=done.record["seed"],
        timings={"prefill_tok_s": round(s.prefill_tok_s, 2), "decode_tok_s": round(s.decode_tok_s, 2),
                 "ttft_s": round(s.ttft_s, 4), "total_s": round(time.perf_counter() - t0, 4)},
        notices=tuple(notices))


def _prompt_ids(pool: SlotPool, request: BatchRequest) -> list[int]:
    """What the slot is chosen by (the longest cached prefix); any session renders alike."""
    session: ChatSession = pool.sessions[0]
    if request.messages is not None:
        return session.prompt_ids(list(request.messages))
    return pool.model.tokenize(request.prompt, add_special=True, parse_special=True)


@dataclass(frozen=True)
class BatchSummary:
    requests: int  # in the input
    skipped: int  # already answered by an earlier run (resumed)
    answered: int  # answered now, errors included
    errors: int
    generated_tokens: int
    wall_s: float
    decode_steps: int = 0  # batched forwards run
    decode_rows: int = 0  # replies' tokens they held

    @property
    def mean_batch(self) -> float:
        """Replies sharing a decode step, on average: how well the steps were batched."""
        return self.decode_rows / self.decode_steps if self.decode_steps else 0.0

    @property
    def tok_s(self) -> float:
        """Tokens generated per second of wall time, over every request answered now."""
        return self.generated_tokens / self.wall_s if self.wall_s > 0 else 0.0


def batch_file(model: Model, input_path: str | os.PathLike, output_path: str | os.PathLike | None = None, *,
               parallel: int = 4, n_ctx: int | None = None, template: str | None = None,
               defaults: SamplerSettings | None = None, model_name: str | None = None,
               write: Callable[[str], None] | None = None) -> BatchSummary:
    """Answer every line of the JSONL ``input_path`` into ``output_path``, in
    order, each line written and flushed as soon as it and all before it are
    done. An existing ``output_path`` is resumed: the answers it holds are
    kept and only the rest are generated. Without ``output_path`` the
    lines go to ``write`` (e.g. ``sys.stdout.write``). ``defaults``: the
    settings of a line that gives none (each line's own override them)."""
    numbered = read_numbered_requests(Path(input_path), defaults)
    sources, requests = [where for where, _ in numbered], [request for _, request in numbered]
    if output_path is None and write is None:
        raise ChordError("batch_file needs an output path or a write function")
    out, skipped = None, 0
    if output_path is not None:
        path = Path(output_path)
        skipped = read_done(path, requests) if path.exists() else 0
        out = open(path, "ab")
    t0 = time.perf_counter()
    todo = requests[skipped:]
    pool = _pool(model, parallel, len(todo), n_ctx, template, model_name) if todo else None
    answered = errors = generated = 0
    try:
        for result in _answers(pool, todo, skipped, sources[skipped:]) if pool else ():
            line = json.dumps(result.to_json(), ensure_ascii=False) + "\n"
            if out is not None:
                out.write(line.encode("utf-8"))
                out.flush()
                os.fsync(out.fileno())  # a crash, even of the machine, keeps the answer
            else:
                write(line)
            answered += 1
            errors += not result.ok
            generated += result.completion_tokens
    finally:
        if out is not None:
            out.close()
    return BatchSummary(requests=len(requests), skipped=skipped, answered=answered, errors=errors,
                        generated_tokens=generated, wall_s=time.perf_counter() - t0,
                        **_decode_counts(pool, generated))


def _decode_counts(pool: SlotPool | None, generated: int) -> dict[str, int]:
    # one slot has no batcher: each of its tokens was a step of one row
    if pool is None:
        return {"decode_steps": 0, "decode_rows": 0}
    if pool.batcher is None:
        return {"decode_steps": generated, "decode_rows": generated}
    return {"decode_steps": pool.batcher.batches, "decode_rows": pool.batcher.rows}
