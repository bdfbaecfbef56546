"""The training worker, ``python -m omr_core.training.worker RUN_DIR``: runs Ultralytics and records the run live."""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from omr_core.atomic import write_atomic
from omr_core.training.record import RunRecord, RunState
from omr_core.training.redo import set_aside_redone
from omr_core.training.runs import (
    BATCHES,
    CLASS_AP,
    LAST,
    RESUMABLE,
    STOP_REQUEST,
    RunView,
    append_event,
    append_jsonl,
    process_start_time,
    read_json,
    read_run,
    update_run,
)

#: Ultralytics log messages that are events, matched anywhere in the message (old and new wordings).
LOG_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # 8.3.x: "CUDA OutOfMemoryError in TaskAlignedAssigner, using CPU"; 8.4: "CUDA out of memory in
    # TaskAlignedAssigner with batch_size=.. and max_num_obj=..; retrying assignment one image at a time on GPU."
    ("assigner_oom", re.compile(r"(OutOfMemoryError|out of memory) in TaskAlignedAssigner", re.I)),
    # trainer.py first-epoch OOM auto-reduce: "CUDA out of memory with batch=16. Reducing to batch=8 and retrying (1/3)."
    ("batch_reduced", re.compile(r"with batch=\d+\. Reducing to batch=\d+", re.I)),
    # trainer.py _handle_nan_recovery: "Loss NaN/Inf detected (attempt 1/3), recovering from last.pt..." and
    # "Fitness NaN/Inf detected but can not recover from last.pt..."
    ("nan_recovery", re.compile(r"NaN/Inf detected", re.I)),
    # trainer.py check_resume: "Resume ignores ['epochs'], using checkpoint values. Start a new run to change them."
    ("resume_ignored", re.compile(r"Resume ignores", re.I)),
)

#: Seconds between the worker's own alert checks (stalled, VRAM, throughput), done in the sampler thread.
ALERT_CHECK_S = 5.0
_RECORDED_LIVE_ALERTS = ("stalled", "vram_high", "throughput_collapse", "diverging", "not_learning")


class _EventHandler(logging.Handler):
    """Turns Ultralytics log records that match `LOG_PATTERNS` into events.jsonl lines."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__(logging.INFO)
        self.run_dir = run_dir

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = record.getMessage()
        except Exception:
            return
        kind = classify_log_line(msg)
        if kind is not None:
            clean = re.sub(r"\x1b\[[0-9;]*m", "", msg).strip()
            try:
                append_event(self.run_dir, kind, clean, level=record.levelname)
            except OSError:
                pass


def classify_log_line(message: str) -> str | None:
    """The event kind of an Ultralytics log message (the first of `LOG_PATTERNS` it matches), or None."""
    for kind, pat in LOG_PATTERNS:
        if pat.search(message):
            return kind
    return None


def _jsonable(v: Any) -> Any:
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return str(v)


def _loss_items(trainer: Any) -> dict[str, float]:
    li = getattr(trainer, "loss_items", None)
    if li is None:
        return {}
    if isinstance(li, dict):  # 8.4: {"box_loss": tensor, ...}
        return {str(k): float(v) for k, v in li.items()}
    vals = li.detach().float().cpu().reshape(-1).tolist()  # 8.0-8.3: a tensor, names in trainer.loss_names
    names = list(getattr(trainer, "loss_names", ())) or [f"loss{i}" for i in range(len(vals))]
    return dict(zip(names, vals))


def _batch_record(
    trainer: Any, losses: dict[str, float], t: float, session: int, i: int, n: int, sec: float, instances: int | None
) -> dict[str, Any]:
    """One line of batches.jsonl: batch ``i``/``n`` of the epoch at time ``t``, its losses, lr, boxes and CUDA memory."""
    rec: dict[str, Any] = {
        "t": t,
        "s": session,
        "epoch": int(trainer.epoch),
        "i": i,
        "nb": n,
        "sec": sec,
        "inst": instances,
        "lr": float(trainer.optimizer.param_groups[0]["lr"]) if trainer.optimizer else None,
    }
    # Flat keys ("loss/box_loss") read faster than a nested dict; NaN/inf are written as null.
    rec.update({f"loss/{k}": (v if math.isfinite(v) else None) for k, v in losses.items()})
    dev = getattr(trainer, "device", None)
    if dev is not None and getattr(dev, "type", "cpu") == "cuda":
        import torch

        rec["mem_res"] = torch.cuda.memory_reserved(dev)
        rec["mem_alloc"] = torch.cuda.memory_allocated(dev)
        rec["mem_peak"] = torch.cuda.max_memory_allocated(dev)
    return rec


class _LiveAlerts:
    """Live alerts checked from the sampler thread: each one newly raised becomes an "alert" event."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.active: set[str] = set()
        self.checked = 0.0
        self.view: RunView | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Multi-GPU: Ultralytics pickles the callbacks (and so the worker and this object) into each DDP rank;
        # the live view holds locks and is only used by the sampler thread of the parent process.
        state = dict(self.__dict__)
        state["view"] = None
        return state

    def on_sample(self, rec: dict[str, Any]) -> None:
        now = rec.get("t", time.time())
        if now - self.checked < ALERT_CHECK_S:
            return
        self.checked = now
        from omr_core.training.alerts import live_alerts

        if self.view is None:
            self.view = RunView(self.run_dir, batch_tail_bytes=1 << 20, gpu_tail_bytes=64 << 10, max_batches=5000,
                                max_samples=120)
        active = {a.kind: a for a in live_alerts(self.view.poll(), now) if a.kind in _RECORDED_LIVE_ALERTS}
        for kind, alert in active.items():
            if kind not in self.active:
                append_event(self.run_dir, "alert", alert.message, alert=kind, severity=alert.severity)
        self.active = set(active)


class Worker:
    """Runs one training session of a run folder (fresh or resumed) and writes its state and logs.

    Args:
        run_dir: The run folder, with a run.json written by the launcher.
    """

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir).resolve()
        doc = read_run(self.run_dir)
        if doc is None:
            raise SystemExit(f"omr worker: {self.run_dir / 'run.json'} is missing or unreadable")
        self.doc = doc
        self.session = len(doc.history) + 1
        self.stop_signal = False  # SIGTERM received
        self.stopped_by_us = False  # we set trainer.stop
        self.stop_why = ""  # "at the end of epoch 3", "after batch 1/2 of epoch 3": said in the final reason
        self.stop_pending_epoch = False  # "stop at the end of this epoch" requested
        self.after_loop = False  # next on_fit_epoch_end is Ultralytics' final evaluation
        self.copied_resumable = False
        self.saved_epoch: int | None = None
        self.batch_i = 0
        self.batch_n = 0
        self.t_prev = 0.0
        self.t_val = 0.0
        self.instances: int | None = None
        self.nonfinite_epochs: set[int] = set()
        self.alerts = _LiveAlerts(self.run_dir)

    # -- stop requests ------------------------------------------------------------------------------------------------

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        if self.stop_signal:  # second SIGTERM: stop now, the default way
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        self.stop_signal = True

    def _stop_mode(self) -> str | None:
        """"batch" (stop after this batch), "epoch" (after this epoch) or None."""
        if self.stop_signal:
            return "batch"
        req = self.run_dir / STOP_REQUEST
        if not req.exists():  # one stat per batch
            return None
        doc = read_json(req) or {}
        return "epoch" if doc.get("mode") == "epoch" else "batch"

    def _request_stop(self, trainer: Any, why: str) -> None:
        if not self.stopped_by_us:
            self.stopped_by_us = True
            self.stop_why = why
            trainer.stop = True
            # Recorded in run.json too: under DDP this runs in rank 0, not in the worker process that ends the run.
            update_run(self.run_dir, stopping=True)
            append_event(self.run_dir, "stopping", f"Stopping {why}; a resumable checkpoint will be kept.",
                         epoch=int(trainer.epoch) + 1)

    # -- callbacks (each guarded: monitoring must never break the training) -----------------------------------------

    def on_pretrain_routine_end(self, trainer: Any) -> None:
        orig = trainer.preprocess_batch

        def preprocess_batch(batch: dict[str, Any]) -> Any:
            # The batch is not passed to callbacks; this is the one place that sees how many boxes it holds.
            out = orig(batch)
            try:
                self.instances = int(batch["cls"].shape[0]) if "cls" in batch else None
            except Exception:
                self.instances = None
            return out

        trainer.preprocess_batch = preprocess_batch

    def on_train_start(self, trainer: Any) -> None:
        changes: dict[str, Any] = {"epochs": int(trainer.epochs), "start_epoch": int(trainer.start_epoch)}
        if self.doc.mode != "resume":
            # Ultralytics rewrites args.yaml on resume (model=last.pt, resolved optimizer): keep the first session's.
            changes["train_args"] = {k: _jsonable(v) for k, v in vars(trainer.args).items()}
        update_run(self.run_dir, **changes)

    def on_train_epoch_start(self, trainer: Any) -> None:
        self.batch_i = 0
        self.batch_n = len(trainer.train_loader)
        self.t_prev = time.time()
        update_run(self.run_dir, phase="train", phase_since=self.t_prev, epoch=int(trainer.epoch) + 1,
                   batches=self.batch_n)

    def on_train_batch_end(self, trainer: Any) -> None:
        now = time.time()
        self.batch_i += 1
        losses = _loss_items(trainer)
        rec = _batch_record(trainer, losses, now, self.session, self.batch_i, self.batch_n, now - self.t_prev, self.instances)
        self.t_prev = now
        append_jsonl(self.run_dir / BATCHES, rec)
        bad = [k for k, v in losses.items() if not math.isfinite(v)]
        if bad and trainer.epoch not in self.nonfinite_epochs:
            self.nonfinite_epochs.add(trainer.epoch)
            append_event(self.run_dir, "nonfinite_loss",
                         f"Non-finite loss ({', '.join(bad)}) at epoch {trainer.epoch + 1}, batch {self.batch_i}/{self.batch_n}.",
                         epoch=int(trainer.epoch) + 1, batch=self.batch_i)
        mode = self._stop_mode()
        if mode == "batch" and not _ddp():
            left = self.batch_n - self.batch_i
            skipped = f" (its other {left} batches skipped, the epoch saved as done)" if left > 0 else ""
            self._request_stop(trainer, f"after batch {self.batch_i}/{self.batch_n} of epoch {trainer.epoch + 1}{skipped}")
        elif mode:
            # DDP ranks only agree on `stop` at the end of an epoch: a rank leaving the batch loop alone would hang.
            self.stop_pending_epoch = True

    def on_train_epoch_end(self, trainer: Any) -> None:
        self.t_val = time.time()
        if not _ddp() and (self.stop_pending_epoch or self._stop_mode()):
            self._request_stop(trainer, f"at the end of epoch {trainer.epoch + 1}")
        update_run(self.run_dir, phase="val", phase_since=self.t_val)

    def on_model_save(self, trainer: Any) -> None:
        self.saved_epoch = int(trainer.epoch) + 1

    def on_fit_epoch_end(self, trainer: Any) -> None:
        now = time.time()
        if self.after_loop:  # Ultralytics' final validation of best.pt
            metrics = {k: float(v) for k, v in (trainer.metrics or {}).items() if isinstance(v, (int, float))}
            update_run(self.run_dir, final_metrics=metrics, phase="final", phase_since=now)
            return
        if not trainer.stop and (self.stop_pending_epoch or self._stop_mode()):  # asked during validation, or DDP
            self._request_stop(trainer, f"at the end of epoch {trainer.epoch + 1}")
        changes: dict[str, Any] = {"phase": "train", "phase_since": now, "val_seconds": now - self.t_val,
                                   "epochs_done": int(trainer.epoch) + 1, "epochs": int(trainer.epochs)}
        if self.saved_epoch is not None:
            changes.update(resume_from=LAST, checkpoint_epoch=self.saved_epoch)
        if trainer.stop:
            self.after_loop = True
            changes.update(phase="final", phase_since=now)
            if self.stopped_by_us and int(trainer.epoch) + 1 < int(trainer.epochs):
                # Ultralytics' final step strips the optimizer from last.pt: keep a copy that can resume.
                last = self.run_dir / LAST
                if last.is_file():
                    write_atomic(self.run_dir / RESUMABLE, lambda tmp: shutil.copyfile(last, tmp))
                    self.copied_resumable = True
                    changes.update(resume_from=RESUMABLE, checkpoint_epoch=self.saved_epoch)
        update_run(self.run_dir, **changes)
        self._record_class_ap(trainer)

    def _record_class_ap(self, trainer: Any) -> None:
        """Each class's AP from this epoch's validation (classes without a validation instance have none): what a
        sweep's objective over chosen classes is read from, epoch by epoch, so it can prune on it."""
        metrics = getattr(getattr(trainer, "validator", None), "metrics", None)
        box = getattr(metrics, "box", None)
        if box is None or not len(getattr(box, "all_ap", [])):
            return
        names = getattr(metrics, "names", None) or trainer.data.get("names", {})
        idx = [int(c) for c in box.ap_class_index]
        append_jsonl(self.run_dir / CLASS_AP, {
            "epoch": int(trainer.epoch) + 1,
            "ap50_95": {str(names[c]): round(float(v), 6) for c, v in zip(idx, box.ap)},
            "ap50": {str(names[c]): round(float(v), 6) for c, v in zip(idx, box.ap50)},
        })

    def _guard(self, fn: Any) -> Any:
        def wrapped(trainer: Any) -> None:
            if _rank() > 0:  # DDP: rank 0 records for everyone
                return
            try:
                fn(trainer)
            except Exception as exc:  # pragma: no cover - defensive
                print(f"omr worker: callback {fn.__name__} failed: {exc!r}", file=sys.stderr, flush=True)

        wrapped.__name__ = fn.__name__
        return wrapped

    def _record_event(self, kind: str, message: str) -> None:
        append_event(self.run_dir, kind, message)

    # -- live alerts, checked from the sampler thread ------------------------------------------------------------------

    def _stamp_scale(self) -> None:
        """Write how the model was trained (run.json ``scale``) into best.pt/last.pt, for review to run it alike."""
        from omr_core.training.runs import BEST
        from omr_core.training.scale import TrainingScale, stamp_checkpoint

        scale = TrainingScale.from_dict(self.doc.scale)
        if scale is None or _rank() > 0:
            return
        for rel in (BEST, LAST):
            try:
                stamp_checkpoint(self.run_dir / rel, scale)
            except Exception as exc:  # the weights stay usable without it: review then says what it assumed
                append_event(self.run_dir, "scale_not_recorded", f"could not record the training scale in {rel}: {exc}")

    # -- the session --------------------------------------------------------------------------------------------------

    def _model_and_kwargs(self) -> tuple[Any, dict[str, Any]]:
        from ultralytics import YOLO

        doc = self.doc
        if doc.mode == "resume":
            ckpt = self.run_dir / (doc.resume_from or RESUMABLE)
            if not ckpt.is_file():
                raise RuntimeError(f"cannot resume: checkpoint {ckpt} is missing")
            model = YOLO(str(ckpt))
            meta = model.ckpt or {}
            if meta.get("optimizer") is None or meta.get("epoch", -1) < 0:
                raise RuntimeError(
                    f"cannot resume: {ckpt.name} has no optimizer state (Ultralytics strips it when a run ends); "
                    f"start a new run with model={ckpt} to fine-tune from it instead"
                )
            self._set_aside_redone(int(meta["epoch"]) + 1)
            kwargs = {**doc.resume_args, "resume": True, "save_dir": str(self.run_dir)}
            return model, kwargs
        spec = doc.spec
        if spec is None:
            raise RuntimeError(f"{self.run_dir / 'run.json'} has no spec: launch the run with `omr train`")
        model = YOLO(spec["model"])
        kwargs = {**spec["args"], "data": spec["data"], "project": str(self.run_dir.parent),
                  "name": self.run_dir.name, "exist_ok": True}
        return model, kwargs

    def _set_aside_redone(self, saved_epochs: int) -> None:
        """Before Ultralytics appends: the epoch after the checkpoint is trained again, so its old records go aside."""
        redo = set_aside_redone(self.run_dir, saved_epochs)
        if redo.anything:
            message = redo.message()
            append_event(self.run_dir, "epoch_redone", message, epoch=redo.epoch, results_rows=redo.results_rows,
                         batches=redo.batches)
            print(f"omr worker: {message}", flush=True)

    def run(self) -> int:
        """Train; returns the process exit code (0 finished or stopped, 1 failed)."""
        from omr_core.training.gpu import Sampler

        signal.signal(signal.SIGTERM, self._on_sigterm)
        pid = os.getpid()
        started = time.time()
        update_run(self.run_dir, state=RunState.RUNNING, pid=pid, pid_create_time=process_start_time(pid),
                   started=started, ended=None, exit_code=None, reason="", phase="setup", phase_since=started,
                   stopping=False,
                   session=self.session, python=sys.executable)
        _terminate_partial_line(self.run_dir / BATCHES)
        sampler = None
        try:
            sampler = Sampler(
                self.run_dir / "gpu.jsonl",
                interval=self.doc.sample_interval or 1.0,
                root_pid=pid,
                on_event=self._record_event,
                on_sample=self.alerts.on_sample,
            ).start()
        except Exception as exc:
            append_event(self.run_dir, "sampler_failed", f"GPU/CPU sampler did not start: {exc}")

        ulog = logging.getLogger("ultralytics")
        handler = _EventHandler(self.run_dir)
        state, reason, code = RunState.FINISHED, "", 0
        try:
            model, kwargs = self._model_and_kwargs()
            ulog.addHandler(handler)  # after the import, which configures the logger
            for event in ("on_pretrain_routine_end", "on_train_start", "on_train_epoch_start", "on_train_batch_end",
                          "on_train_epoch_end", "on_model_save", "on_fit_epoch_end"):
                model.add_callback(event, self._guard(getattr(self, event)))
            model.train(**kwargs)
            self._stamp_scale()
            now_doc = read_run(self.run_dir) or RunRecord()
            done, planned = now_doc.epochs_done or 0, now_doc.epochs or 0
            if (self.stopped_by_us or now_doc.stopping) and done < planned:  # a stop in the last epoch finished it
                state, reason = RunState.STOPPED, f"stopped on request {self.stop_why}".strip()
        except BaseException as exc:  # KeyboardInterrupt and SystemExit too: the run must not stay "running"
            state, code = RunState.FAILED, 1
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:500]
            kind = "cuda_oom" if "out of memory" in str(exc).lower() else "exception"
            append_event(self.run_dir, kind, f"{type(exc).__name__}: {reason}",
                         traceback="".join(traceback.format_exception(exc))[-4000:])
            traceback.print_exc()
        finally:
            ulog.removeHandler(handler)
            if sampler is not None:
                sampler.stop()
        ended = time.time()
        changes: dict[str, Any] = {"state": state, "reason": reason, "exit_code": code, "ended": ended,
                                   "duration_s": ended - started, "phase": None}
        if state == RunState.FINISHED:
            changes["resume_from"] = None
            (self.run_dir / RESUMABLE).unlink(missing_ok=True)
        elif state == RunState.STOPPED and not (self.run_dir / RESUMABLE).is_file():
            changes["resume_from"] = None
        (self.run_dir / STOP_REQUEST).unlink(missing_ok=True)
        update_run(self.run_dir, **changes)
        return code


def _rank() -> int:
    """Ultralytics' RANK: -1 single process, 0.. for DDP ranks (set by torch.distributed.run)."""
    return int(os.environ.get("RANK", -1))


def _ddp() -> bool:
    return int(os.environ.get("WORLD_SIZE", 1)) > 1


def _terminate_partial_line(path: Path) -> None:
    """A worker killed mid-write leaves a partial line: end it so the next session's first line stays valid."""
    try:
        with open(path, "rb+") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() == 0:
                return
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                f.write(b"\n")
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m omr_core.training.worker RUN_DIR``."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m omr_core.training.worker RUN_DIR", file=sys.stderr)
        return 2
    return Worker(argv[0]).run()


if __name__ == "__main__":
    sys.exit(main())
