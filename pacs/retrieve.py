"""Bringing a study home by C-MOVE (to our Storage SCP) or C-GET (on the same association).

What counts is what landed in the store, not what the PACS says: arrivals are counted as
files are filed, and only what is still missing is asked for again. A study's instance list
is what landed only when a first retrieve ended cleanly and every count the PACS gave agrees
with it (sub-operations completed = distinct arrivals of that study = the STUDY-level count,
when the PACS gave one); otherwise, and for a study partly in the store, it comes from an
IMAGE-level C-FIND. A request the PACS refused (failed sub-operations) is never repeated
unchanged: the next one changes course (other contexts, other syntaxes, C-MOVE).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from pydicom.dataset import Dataset
from pydicom.uid import (
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom import build_context, build_role, evt
from pynetdicom.association import Association
from pynetdicom.presentation import PresentationContext
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet as GetModel
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove as MoveModel

from pacs.association import open_association
from pacs.errors import (
    AssociationAborted,
    IdleTimeout,
    OwnStoreRefused,
    PacsError,
    RetrieveCancelled,
    RetrieveIncomplete,
    SubOperationsFailed,
    dimse_failure,
    move_destination_unknown,
    status_meaning,
)
from pacs.models import Instance, LocalNode, PacsPatient, Peer
from pacs.query import find_instances, find_series
from pacs.receive import Arrival, discard_partial, receive_into, store_handler
from pacs.scp import Expected, StorageSCP
from pacs.storage_classes import BROAD, class_name, implied_by
from pacs.store import Origin, Placement, StoredInstance, StudyStore, free_space

STATUS_PENDING = (0xFF00, 0xFF01)
STATUS_PARTIAL = 0xB000
STATUS_MOVE_DESTINATION_UNKNOWN = 0xA801
# A request naming many instances is split so the identifier stays a reasonable size.
UIDS_PER_REQUEST = 500
# Proposed per SOP class for C-GET, each in its own context, so the PACS can send every file
# in the syntax it already has instead of transcoding it.
GET_TRANSFER_SYNTAXES = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    RLELossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    JPEG2000Lossless,
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
)
MAX_CONTEXTS = 128


@dataclass(frozen=True)
class Progress:
    """Where a study retrieve stands. `received` counts distinct expected instances on disk;
    `bytes_stored` is their size on disk, whichever attempt (or earlier job) brought them."""

    study_uid: str
    expected: int
    received: int
    bytes_stored: int = 0
    # As the PACS reports its sub-operations; not every PACS sends them.
    remaining: int | None = None
    completed: int | None = None
    failed: int | None = None
    warning: int | None = None


ProgressCallback = Callable[[Progress], None]
# One sentence for the job's events: a retrieve changed course (assumed contexts, fallbacks).
NoticeCallback = Callable[[str], None]


@dataclass(frozen=True)
class _Attempt:
    """One way of asking: C-MOVE, or C-GET offering these classes in these syntaxes."""

    method: Literal["move", "get"]
    classes: tuple[str, ...] = ()
    syntaxes: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.method == "move":
            return "C-MOVE"
        if len(self.syntaxes) == 1:
            return f"C-GET offering {UID(self.syntaxes[0]).name} only"
        return "C-GET offering every common transfer syntax"


@dataclass
class _Outcome:
    """How one request ended: `failed` sub-operations the PACS itself reported."""

    failed: int = 0
    status: int = 0
    comment: str = ""

    def add(self, other: _Outcome) -> None:
        self.failed += other.failed
        if other.status:
            self.status, self.comment = other.status, other.comment


@dataclass(frozen=True)
class FetchResult:
    study_uid: str
    expected: int
    received_now: int
    already_present: int
    bytes_stored: int
    requests: int
    instances: tuple[Instance, ...] = ()
    # What the retrieve had to decide on its own (also passed to `notice` as it happens).
    notices: tuple[str, ...] = field(default=())
    # Stored copies the PACS's differing copy replaced: (new path, where the old one is kept).
    replaced: tuple[tuple[Path, Path], ...] = ()
    # Files that claimed this study but were not the PACS's answer to this retrieve.
    held_back: int = 0


class Retriever:
    """Fetches whole studies into a `StudyStore` from peers configured for C-MOVE or C-GET."""

    def __init__(self, local: LocalNode, store: StudyStore, scp: StorageSCP | None = None) -> None:
        self.local = local
        self.store = store
        self.scp = scp
        # Move-completion stragglers: some PACS answer success before every file has landed.
        self.settle_seconds = 2.0

    def fetch_study(
        self,
        peer: Peer,
        study_uid: str,
        *,
        progress: ProgressCallback | None = None,
        cancelled: Callable[[], bool] | None = None,
        max_requests: int = 3,
        expected: int | None = None,
        notice: NoticeCallback | None = None,
        modalities: Sequence[str] = (),
        patient: PacsPatient | None = None,
        refresh: bool = False,
    ) -> FetchResult:
        """Make every instance the PACS has for the study present in the store, as the PACS
        has it.

        Only files the PACS sends for this retrieve count, and only when they carry the
        PatientID (and IssuerOfPatientID, when it gave one) of `patient`, the PACS's C-FIND
        answer for the study: others are held back (see `pacs.scp`). The PACS's copy wins
        over a differing stored one (`pacs.store`). With `refresh`, or when the study's folder
        holds files someone pushed, every instance is asked for again, so nothing the store
        held counts as the PACS's unless the PACS sends it now.

        A study not yet in the store is retrieved at once, without listing it first: when
        the PACS's counts vouch for what landed (see the module docstring), the IMAGE-level
        C-FIND is skipped altogether, since decoding one answer per image costs as much
        CPU as receiving a tenth of the images; when they do not, the listing tells what is
        still missing. `expected`, the count the STUDY-level answer announced, is the
        progress total until then and one of the counts checked. `modalities`, the study's
        as the STUDY-level answer gave them, let a C-GET start at once, proposing the
        storage classes they imply.

        When the PACS itself reports failed sub-operations, asking the same way again would
        fail the same way: the next request changes course instead (C-GET offering one
        transfer syntax at a time, since some PACS send every image of a class in the
        first syntax accepted for it; then C-MOVE for "auto"), each change told to `notice`.
        Raises `SubOperationsFailed` (not transient) when no way is left,
        `RetrieveIncomplete` (transient) if instances are still missing after `max_requests`
        plain repeats; other `PacsError`s as the PACS or network dictate.
        """
        notices: list[str] = []

        def note(message: str) -> None:
            notices.append(message)
            if notice is not None:
                notice(message)

        expectation = Expected(
            study_uid,
            peer.ae_title,
            patient.patient_id if patient is not None else None,
            patient.issuer_of_patient_id if patient is not None else "",
        )
        tally = _Tally(study_uid, expected, progress, expectation)
        requests = repeats = 0
        outcome: _Outcome | None = None
        refresh = refresh or self.store.has_pushed(study_uid)
        fresh = refresh or not self.store.study_dir(study_uid).exists()
        if fresh and not modalities and peer.retrieve_method in ("get", "auto"):
            # One SERIES-level answer per series is cheap next to the IMAGE-level listing,
            # and its modalities are enough to start (dcmqrscp gives none at STUDY level).
            modalities = sorted(
                {s.modality for s in find_series(peer, self.local.ae_title, study_uid)}
            )
        early = _early_attempt(peer, fresh, modalities)
        vouched: list[Instance] | None = None
        if early is not None:
            identifier = _identifier("STUDY", study_uid)
            outcome = self._retrieve(peer, identifier, tally, cancelled, early)
            vouched = tally.vouched(outcome, modalities)
        instances = (
            vouched if vouched is not None else find_instances(peer, self.local.ae_title, study_uid)
        )
        already = tally.expect(instances, self.store, refresh=refresh)
        attempts = iter(list(self._attempts(peer, instances, note)))
        if early is not None and early.method == "move":
            next(attempts)  # the C-MOVE just made is the first way of asking
        attempt = early or next(attempts)
        tried: list[_Attempt] = []
        last = _Outcome()
        while True:
            if outcome is not None:
                requests += 1
                tried.append(attempt)
                if outcome.status:
                    last = outcome
                if not tally.missing:
                    break
                if outcome.failed and not tally.store_failures:
                    following = next((a for a in attempts if a != attempt), None)
                    if following is None:
                        raise self._refused(peer, instances, tally, tried, last)
                    if following.method != attempt.method or len(attempt.syntaxes) != 1:
                        note(
                            f"The PACS {peer.label} could not send {len(tally.missing)} images "
                            f"by {attempt.describe()}; trying {following.describe()}"
                            + (
                                " and the other syntaxes one at a time."
                                if following.method == "get"
                                else "."
                            )
                        )
                    attempt, outcome = following, None
                    continue
                repeats += 1
                if repeats >= max_requests:
                    break
            if not tally.missing:
                break
            if cancelled is not None and cancelled():
                raise RetrieveCancelled(f"The retrieve from {peer.label} was cancelled.")
            outcome = _Outcome()
            for identifier in _identifiers(study_uid, instances, tally.missing):
                outcome.add(self._retrieve(peer, identifier, tally, cancelled, attempt))
        if tally.missing:
            missing = len(tally.missing)
            if tally.store_failures:
                raise OwnStoreRefused(
                    f"The gateway's own disk would not take the images: {missing} of "
                    f"{len(instances)} images of a study from {peer.label} could not be "
                    f"stored (disk full or not writable; {free_space(self.store.root)} free "
                    "where the gateway keeps studies). The PACS is not at fault: free space "
                    "on the gateway's disk, then the fetch can be tried again.",
                    missing=missing,
                    expected=len(instances),
                )
            raise RetrieveIncomplete(
                f"{missing} of {len(instances)} images of a study did not arrive from "
                f"{peer.label} after {requests} requests.",
                missing=missing,
                expected=len(instances),
            )
        if refresh:
            self.store.clear_pushed(study_uid)
        return FetchResult(
            study_uid=study_uid,
            expected=len(instances),
            received_now=len(instances) - already,
            already_present=already,
            bytes_stored=tally.bytes_stored,
            requests=requests,
            instances=tuple(tally.with_declared_classes(instances)),
            notices=tuple(notices),
            replaced=tuple(tally.replaced),
            held_back=tally.held_back,
        )

    def _attempts(
        self, peer: Peer, instances: Sequence[Instance], note: NoticeCallback
    ) -> Iterator[_Attempt]:
        """The ways to ask, in order; the next one is used only when the PACS refused."""
        if peer.retrieve_method in ("get", "auto"):
            # Evaluated at once (not lazily) so the caller hears what was assumed.
            classes, assumed = _get_classes(instances, note)
            yield _Attempt("get", classes, GET_TRANSFER_SYNTAXES)
            # One syntax per round: a PACS that sends every image of a class in the first
            # syntax accepted for it (dcmqrscp) gets one chance per syntax. With classes
            # only assumed, the rounds also offer the broad set (one context per class).
            # Uncompressed syntaxes such a PACS converts between itself: Explicit VR is
            # worth a round only for the classes added, Implicit VR comes last.
            wider = tuple(dict.fromkeys((*classes, *BROAD))) if assumed else classes
            rounds = [ts for ts in GET_TRANSFER_SYNTAXES if ts != ImplicitVRLittleEndian]
            for syntax in [*rounds[0 if assumed else 1 :], ImplicitVRLittleEndian]:
                yield _Attempt("get", wider[: MAX_CONTEXTS - 1], (syntax,))
        if peer.retrieve_method == "move" or (
            peer.retrieve_method == "auto" and self.scp is not None
        ):
            yield _Attempt("move")

    def _refused(
        self,
        peer: Peer,
        instances: Sequence[Instance],
        tally: _Tally,
        tried: Sequence[_Attempt],
        last: _Outcome,
    ) -> SubOperationsFailed:
        missing = tally.missing or set()
        kinds = sorted(
            {
                class_name(i.sop_class_uid) if i.sop_class_uid else f"modality {i.modality or '?'}"
                for i in instances
                if i.sop_instance_uid in missing
            }
        )
        methods = " or ".join(sorted({f"C-{a.method.upper()}" for a in tried}))
        syntaxes = [UID(ts).name for ts in dict.fromkeys(t for a in tried for t in a.syntaxes)]
        offered = f" offering {', '.join(syntaxes)}" if syntaxes else ""
        status = ""
        if last.status:
            meaning = status_meaning(
                "C-MOVE" if tried[-1].method == "move" else "C-GET", last.status
            )
            status = f", last status 0x{last.status:04X} {meaning}"
            if last.comment:
                status += f" ({last.comment})"
        hint = (
            " Ask the PACS administrator to let it send these images as stored "
            "(the transfer syntax it holds them in) or to convert them"
        )
        if peer.retrieve_method != "auto":
            hint += ', or set this PACS\'s retrieve_method to "auto" to try C-GET and C-MOVE'
        return SubOperationsFailed(
            f"The PACS {peer.label} did not send {len(missing)} of {len(instances)} images "
            f"({'; '.join(kinds)}) by {methods}"
            f"{offered}{status}.{hint}; retrying unchanged will not help.",
            missing=len(missing),
            expected=len(instances),
        )

    def _retrieve(
        self,
        peer: Peer,
        identifier: Dataset,
        tally: _Tally,
        cancelled: Callable[[], bool] | None,
        attempt: _Attempt,
    ) -> _Outcome:
        if attempt.method == "get":
            return self._get(peer, identifier, tally, cancelled, attempt)
        return self._move(peer, identifier, tally, cancelled)

    def _move(
        self, peer: Peer, identifier: Dataset, tally: _Tally, cancelled: Callable[[], bool] | None
    ) -> _Outcome:
        if self.scp is None:
            raise PacsError("C-MOVE needs the gateway's Storage SCP running to receive images.")
        with open_association(
            peer,
            self.local.ae_title,
            [build_context(MoveModel)],
            maximum_pdu_size=self.local.maximum_pdu_size,
        ) as assoc:
            watchdog = _Watchdog(assoc, peer.dimse_timeout, cancelled)
            listener = _study_listener(tally, watchdog)
            self.scp.add_listener(listener)
            # Marks what lands for this study from this PACS as asked for (not an unsolicited
            # push), up to the last straggler.
            expecting = self.scp.expecting(tally.expectation)
            failures_before = self.scp.store_failures
            try:
                with expecting:
                    with watchdog:
                        responses = assoc.send_c_move(identifier, self.local.ae_title, MoveModel)
                        final = _follow(responses, tally, watchdog)
                    # Another study's arrival failing at the same time counts here too:
                    # erring towards "our fault" only means a plain repeat instead of a
                    # change of course.
                    ours = self.scp.store_failures - failures_before
                    outcome = _check_final(
                        "C-MOVE",
                        final,
                        peer,
                        self.local.ae_title,
                        watchdog,
                        tally.any_sub_operations,
                        ours,
                    )
                    tally.wait_settled(self.settle_seconds)
            finally:
                self.scp.remove_listener(listener)
        tally.store_failures += ours
        return outcome

    def _get(
        self,
        peer: Peer,
        identifier: Dataset,
        tally: _Tally,
        cancelled: Callable[[], bool] | None,
        attempt: _Attempt,
    ) -> _Outcome:
        receive_into(self.store)
        classes = list(attempt.classes)
        watchdog_box: list[_Watchdog] = []

        def landed(stored: StoredInstance) -> None:
            watchdog_box[0].touch()
            tally.landed(stored)

        def store_failed() -> None:
            tally.store_failures += 1

        handlers = [
            (evt.EVT_C_STORE, store_handler(self.store, landed, store_failed, tally.classify)),
            (evt.EVT_CONN_CLOSE, discard_partial),
        ]
        with open_association(
            peer,
            self.local.ae_title,
            _get_contexts(classes, attempt.syntaxes),
            ext_neg=[build_role(uid, scp_role=True) for uid in classes],
            evt_handlers=handlers,
            maximum_pdu_size=self.local.maximum_pdu_size,
        ) as assoc:
            watchdog = _Watchdog(assoc, peer.dimse_timeout, cancelled)
            watchdog_box.append(watchdog)
            failures_before = tally.store_failures
            with watchdog:
                final = _follow(assoc.send_c_get(identifier, GetModel), tally, watchdog)
            return _check_final(
                "C-GET",
                final,
                peer,
                self.local.ae_title,
                watchdog,
                tally.any_sub_operations,
                tally.store_failures - failures_before,
            )


class _Tally:
    """Counts what lands for one study; thread-safe.

    Until the instance list is known (`expect`), it counts distinct arrivals against the
    PACS's announced number; after, the expected instances still missing from the store.
    Only instances of its own study count: a file of another study that a PACS sends on the
    same association is filed under that study, never counted as this one's.
    """

    def __init__(
        self,
        study_uid: str,
        expected: int | None,
        progress: ProgressCallback | None,
        expectation: Expected | None = None,
    ) -> None:
        self._lock = threading.Condition()
        self._progress_cb = progress
        self.expectation = expectation or Expected(study_uid)
        self.replaced: list[tuple[Path, Path]] = []
        self.held_back = 0
        # Each distinct arrival, with the SOP class the sender declared: it fills in what
        # the listing lacked (dcmqrscp lists none).
        self._arrived: dict[str, StoredInstance] = {}
        # Arrivals our own store could not write: failures that are ours, not the PACS's.
        self.store_failures = 0
        self.missing: set[str] | None = None
        self.bytes_stored = 0
        self.state = Progress(study_uid, expected or 0, 0)

    def expect(
        self, instances: Sequence[Instance], store: StudyStore, *, refresh: bool = False
    ) -> int:
        """Take the PACS's instance list; return how many were in the store beforehand.
        With `refresh`, whatever the store holds is asked for again unless it arrived in this
        retrieve."""
        with self._lock:
            self.missing = {
                i.sop_instance_uid
                for i in instances
                if (refresh and i.sop_instance_uid not in self._arrived)
                or not store.has(i.study_uid, i.series_uid, i.sop_instance_uid)
            }
            listed = {i.sop_instance_uid for i in instances}
            before = len(listed) - len(self.missing) - len(self._arrived.keys() & listed)
            self.bytes_stored = sum(
                _size(store.path_for(i.study_uid, i.series_uid, i.sop_instance_uid))
                for i in instances
                if i.sop_instance_uid not in self.missing
            )
            self.state = replace(
                self.state,
                expected=len(instances),
                received=len(instances) - len(self.missing),
                bytes_stored=self.bytes_stored,
            )
        self._emit()
        return before

    def vouched(self, outcome: _Outcome, modalities: Sequence[str]) -> list[Instance] | None:
        """What landed, as the study's instance list, if the PACS's counts vouch for it.

        They do when the request ended in plain success, nothing failed, warned or remains,
        the PACS counted its completed sub-operations, and that count, the distinct
        arrivals and the STUDY-level count (when there was one) are the same number.
        """
        with self._lock:
            s, arrived = self.state, len(self._arrived)
            clean = (
                outcome.status == 0x0000
                and not outcome.failed
                and not (s.failed or s.warning or s.remaining)
                and s.completed == arrived
                and arrived > 0
                and (not s.expected or s.expected == arrived)
            )
            if not clean:
                return None
            modality = modalities[0] if len(modalities) == 1 else ""
            return [
                Instance(
                    study_uid=i.study_uid,
                    series_uid=i.series_uid,
                    sop_instance_uid=i.sop_instance_uid,
                    sop_class_uid=i.sop_class_uid,
                    number=i.number,
                    modality=modality,
                )
                for i in self._arrived.values()
            ]

    def with_declared_classes(self, instances: Sequence[Instance]) -> Iterator[Instance]:
        """The instances, each with the SOP class its sender declared when the list had none."""
        with self._lock:
            classes = {sop: i.sop_class_uid for sop, i in self._arrived.items()}
        for i in instances:
            declared = classes.get(i.sop_instance_uid)
            yield i if i.sop_class_uid or not declared else replace(i, sop_class_uid=declared)

    def classify(self, arrival: Arrival) -> tuple[Origin, str]:
        """How a file arriving on our own C-GET association is placed: the PACS answers only
        for this study and this patient."""
        if arrival.header.study_uid != self.state.study_uid:
            return Origin.HELD, "sent during a C-GET of another study"
        problem = self.expectation.problem(arrival)
        return (Origin.HELD, problem) if problem else (Origin.RETRIEVED, "")

    def landed(self, stored: StoredInstance) -> None:
        sop = stored.sop_instance_uid
        with self._lock:
            if not stored.solicited:
                if not stored.kept and stored.study_uid == self.state.study_uid:
                    self.held_back += 1
                return
            if stored.placement is Placement.REPLACED and stored.held_path is not None:
                self.replaced.append((stored.path, stored.held_path))
            if (
                stored.study_uid != self.state.study_uid
                or sop in self._arrived
                or (self.missing is not None and sop not in self.missing)
            ):
                return
            self._arrived[sop] = stored
            if self.missing is not None:
                self.missing.discard(sop)
            self.bytes_stored += stored.size
            received = (
                len(self._arrived)
                if self.missing is None
                else self.state.expected - len(self.missing)
            )
            self.state = replace(self.state, received=received, bytes_stored=self.bytes_stored)
            self._lock.notify_all()
        self._emit()

    def _complete(self) -> bool:
        if self.missing is not None:
            return not self.missing
        # Before the list: as many as the PACS announced, or says it sent, whichever is more.
        announced = max(self.state.expected, self.state.completed or 0)
        return not announced or len(self._arrived) >= announced

    def sub_operations(self, status: Dataset) -> None:
        counts = {
            field: _int_or_none(status.get(keyword))
            for field, keyword in (
                ("remaining", "NumberOfRemainingSuboperations"),
                ("completed", "NumberOfCompletedSuboperations"),
                ("failed", "NumberOfFailedSuboperations"),
                ("warning", "NumberOfWarningSuboperations"),
            )
        }
        if all(v is None for v in counts.values()):
            return
        with self._lock:
            self.state = replace(self.state, **counts)
        self._emit()

    @property
    def any_sub_operations(self) -> bool:
        s = self.state
        return bool((s.completed or 0) + (s.failed or 0) + (s.warning or 0))

    def wait_settled(self, quiet_seconds: float) -> None:
        """Wait while files are still landing, until complete or quiet for `quiet_seconds`."""
        with self._lock:
            while not self._complete():
                before = len(self._arrived)
                self._lock.wait(quiet_seconds)
                if len(self._arrived) == before:
                    return

    def _emit(self) -> None:
        if self._progress_cb is not None:
            self._progress_cb(self.state)


class _Watchdog:
    """Aborts the association when the PACS goes idle too long, or when asked to cancel.

    pynetdicom's own timeouts are per DIMSE message; during a C-MOVE without Pending
    responses the messages stop while files keep landing on the SCP, so idle time here
    counts both responses and arrivals.
    """

    def __init__(
        self, assoc: Association, idle_timeout: float, cancelled: Callable[[], bool] | None
    ) -> None:
        self._assoc = assoc
        self._idle = idle_timeout
        self._cancelled = cancelled
        self._last = time.monotonic()
        self._done = threading.Event()
        self.reason: str | None = None
        self._thread = threading.Thread(target=self._watch, name="retrieve-watchdog", daemon=True)

    def touch(self) -> None:
        self._last = time.monotonic()

    def __enter__(self) -> _Watchdog:
        self._assoc.dimse_timeout = None
        self._assoc.network_timeout = None
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._done.wait(0.1):
            if self._cancelled is not None and self._cancelled():
                self.reason = "cancelled"
            elif time.monotonic() - self._last > self._idle:
                self.reason = "idle"
            if self.reason:
                self._assoc.abort()
                # pynetdicom wakes a thread waiting for the next response when the peer
                # aborts, but not when we do; without this it would wait forever.
                self._assoc.dimse.msg_queue.put((None, None))
                return


def _follow(
    responses: Iterator[tuple[Dataset, Dataset | None]], tally: _Tally, watchdog: _Watchdog
) -> Dataset | None:
    """Consume C-MOVE/C-GET responses; return the final status, or None if it never came."""
    for status, _identifier in responses:
        watchdog.touch()
        if not status or "Status" not in status:
            return None
        tally.sub_operations(status)
        if int(status.Status) not in STATUS_PENDING:
            return status
    return None


def _check_final(
    operation: str,
    final: Dataset | None,
    peer: Peer,
    our_aet: str,
    watchdog: _Watchdog,
    sub_operations_ran: bool,
    store_failures: int = 0,
) -> _Outcome:
    """The outcome of a final status; raises for failures that are not about images.

    `store_failures`: arrivals of this request our own store could not write. A PACS then
    answers with whatever failure status it chooses (Orthanc may give a bare 0xC000), which
    says nothing about its configuration: the images failed, and it was our disk."""
    if watchdog.reason == "cancelled":
        raise RetrieveCancelled(f"The retrieve from {peer.label} was cancelled.")
    if watchdog.reason == "idle":
        raise IdleTimeout(
            f"The PACS {peer.label} sent nothing for {peer.dimse_timeout:g} s during the "
            f"{operation}; the association was closed."
        )
    if final is None:
        raise AssociationAborted(f"The PACS {peer.label} broke off the {operation}.")
    code = int(final.Status)
    comment = str(final.get("ErrorComment", "") or "")
    failed = _int_or_none(final.get("NumberOfFailedSuboperations")) or 0
    if code == 0x0000:
        return _Outcome(failed, code, comment)
    # The PACS tried and some images failed (0xB000), or all did (dcmqrscp answers 0xA702
    # when it has no context for a class or cannot convert a file): the caller changes
    # course for what is missing; it is not an error of the association.
    if code == STATUS_PARTIAL or failed or store_failures:
        return _Outcome(max(failed, store_failures, 1), code, comment)
    if code == STATUS_MOVE_DESTINATION_UNKNOWN or _names_unknown_destination(comment):
        raise move_destination_unknown(peer.label, our_aet, code)
    error = dimse_failure(operation, code, peer.label, comment)
    if operation == "C-MOVE" and not sub_operations_ran:
        # Orthanc, among others, answers an unknown destination with a bare 0xC000.
        error.message += (
            f" Nothing was sent: check that the PACS knows the gateway's AE title {our_aet} "
            "as a move destination, with the gateway's host and port."
        )
        error.args = (error.message,)
    raise error


def _names_unknown_destination(comment: str) -> bool:
    lowered = comment.lower()
    return "unknown" in lowered and ("modality" in lowered or "destination" in lowered)


def _study_listener(tally: _Tally, watchdog: _Watchdog) -> Callable[[StoredInstance], None]:
    def listener(stored: StoredInstance) -> None:
        if stored.study_uid == tally.state.study_uid:
            watchdog.touch()
            tally.landed(stored)

    return listener


def _identifiers(
    study_uid: str, instances: Sequence[Instance], missing: set[str]
) -> Iterator[Dataset]:
    """The fewest requests that cover `missing`: the study, whole series, or instance lists."""
    if len(missing) == len(instances):
        yield _identifier("STUDY", study_uid)
        return
    by_series: dict[str, list[Instance]] = {}
    for instance in instances:
        by_series.setdefault(instance.series_uid, []).append(instance)
    for series_uid, members in by_series.items():
        wanted = [i.sop_instance_uid for i in members if i.sop_instance_uid in missing]
        if not wanted:
            continue
        if len(wanted) == len(members):
            yield _identifier("SERIES", study_uid, series_uid)
            continue
        for start in range(0, len(wanted), UIDS_PER_REQUEST):
            yield _identifier(
                "IMAGE", study_uid, series_uid, wanted[start : start + UIDS_PER_REQUEST]
            )


def _identifier(
    level: str, study_uid: str, series_uid: str = "", sop_uids: Sequence[str] = ()
) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    ds.StudyInstanceUID = study_uid
    if series_uid:
        ds.SeriesInstanceUID = series_uid
    if sop_uids:
        ds.SOPInstanceUID = list(sop_uids)
    return ds


def _early_attempt(peer: Peer, fresh: bool, modalities: Sequence[str]) -> _Attempt | None:
    """How to start retrieving a study not yet in the store before its listing is read."""
    if not fresh:
        return None
    if peer.retrieve_method == "move":
        return _Attempt("move")
    implied = [implied_by(m) for m in modalities]
    if not implied or any(c is None for c in implied):
        return None
    classes = tuple(dict.fromkeys(u for c in implied for u in c or ()))
    return _Attempt("get", classes, GET_TRANSFER_SYNTAXES)


def _get_classes(
    instances: Sequence[Instance], note: NoticeCallback
) -> tuple[tuple[str, ...], bool]:
    """The storage classes to propose, and whether any were assumed rather than listed."""
    listed = {i.sop_class_uid for i in instances if i.sop_class_uid}
    unlisted = [i for i in instances if not i.sop_class_uid]
    if not unlisted:
        return tuple(sorted(listed)), False
    modalities = sorted({i.modality for i in unlisted})
    implied = [implied_by(m) for m in modalities]
    if all(c is not None for c in implied):
        classes = tuple(dict.fromkeys((*sorted(listed), *(u for c in implied for u in c or ()))))
        note(
            "The PACS did not say which kinds of images this study holds; asked for those "
            f"its modalities ({', '.join(modalities)}) imply."
        )
        return classes, True
    note("The PACS did not say which kinds of images this study holds; asked for all common ones.")
    return tuple(dict.fromkeys((*sorted(listed), *BROAD)))[: MAX_CONTEXTS - 1], True


def _get_contexts(
    sop_classes: Sequence[str], syntaxes: Sequence[str] = GET_TRANSFER_SYNTAXES
) -> list[PresentationContext]:
    """Each class in each syntax, in its own context, within one association's 128.

    One syntax per context lets a PACS pick the context matching how it holds each file
    (Orthanc does); classes beyond the room get fewer syntaxes, uncompressed first.
    """
    room = MAX_CONTEXTS - 1
    if len(sop_classes) > room:
        raise PacsError(
            f"The study holds {len(sop_classes)} kinds of object, more than one C-GET "
            "association can carry; configure this PACS for C-MOVE."
        )
    per_class = max(1, min(len(syntaxes), room // max(1, len(sop_classes))))
    contexts = [build_context(GetModel)]
    for uid in sop_classes:
        contexts += [build_context(uid, ts) for ts in syntaxes[:per_class]]
    return contexts


def _int_or_none(value: object) -> int | None:
    try:
        return int(value) if value is not None and value != "" else None  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:  # removed since it was counted: counts as nothing
        return 0
