"""Studies a PACS sends to the Storage SCP without being asked (unsolicited pushes).

The SCP reports each association once it has ended (`pacs.scp.AssociationReceipt`); the
instances of studies no retrieve of this process was waiting for are pushes. Per pushed study,
on a worker thread of its own (matching may first have to read R4):
- one stored header gives the PACS patient and the study;
- the matcher decides: an automatic link indexes the study from the store (all of its files,
  including those of earlier associations), anything else (no R4 configured, R4 unreadable,
  no clear candidate) queues it for review with origin `push`.

Received files are never deleted here: a study nobody could match stays in the store and in
the queue until staff resolve it (`attach`) or dismiss it. A study staff dismissed before stays
dismissed when it is pushed (again): its files are kept, the dismissed item stays its record,
and no new item asks staff twice. Logs carry uids and AE titles only.

Matching works from memory, so a crash between a push landing and its matching would leave
files nobody sees: `gateway.pushes.recovery` finds such study folders when the gateway starts and
hands them to `recover`, the same matching as a push. Who sent them is kept on disk meanwhile
(`SenderMarks`: one small file per pushed study, written when its first instance lands).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import sqlalchemy as sa
from pydicom import dcmread
from pydicom.dataset import Dataset

from gateway.core.settings import Settings
from gateway.index.study_index import IndexedStudy, StudyIndex
from gateway.matching import MatchDecision, ReviewReason
from gateway.practice.directory import PatientDirectory
from gateway.review import ReviewItem, ReviewOrigin, ReviewSink, ReviewState
from gateway.review.audit import AuditAction, AuditLog, study_subject
from pacs.attributes import PATIENT_TAGS, date_value, int_value, patient_of
from pacs.models import Instance, PacsPatient, Study
from pacs.scp import AssociationReceipt, StorageSCP
from pacs.store import StoredInstance, StudyStore

log = logging.getLogger(__name__)

_PATIENT_TAGS = [
    *PATIENT_TAGS,
    "StudyDate",
    "StudyDescription",
    "AccessionNumber",
    "Modality",
]
_INSTANCE_TAGS = ["InstanceNumber", "Modality", "SOPClassUID", "PatientID", "IssuerOfPatientID"]
NO_R4_REASON = "no R4 database is configured here, so no R4 patient could be proposed"
R4_UNREADABLE_REASON = "the R4 database could not be read when the study arrived"
# The PACS name of a study found unmatched at start whose sender was not recorded.
UNKNOWN_SENDER = "unknown (found at start)"
SENDER_MARKS_DIR = "push-senders"


@dataclass(frozen=True)
class Sender:
    """Who pushed: the calling AE title and the address the connection came from."""

    ae_title: str
    address: str

    def describe(self) -> str:
        return f"{self.ae_title} from {self.address or 'an unknown address'}"


@dataclass(frozen=True)
class FoundStudy:
    """A study folder found at start that was received but never matched (`push_recovery`)."""

    study_uid: str


class SenderMarks:
    """The calling AE title of each pushed study not matched yet: `<directory>/<StudyUID>`.

    Written when the first unsolicited instance of a study lands (one small file per study and
    process, not per instance: later instances cost a set look-up), removed once the study is
    matched. A crash in between leaves it, so the study found at the next start is filed under
    its sender. A mark that cannot be written is logged and skipped: receiving goes on, and
    the study is then found under UNKNOWN_SENDER. The first sender of a study wins.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._marked: set[str] = set()
        self._lock = threading.Lock()

    def mark(self, study_uid: str, calling_ae_title: str) -> None:
        with self._lock:
            if study_uid in self._marked:
                return
            self._marked.add(study_uid)
        # The uid was checked by the store before the instance was filed: a safe file name.
        path = self.directory / study_uid
        try:
            try:
                handle = path.open("xb")
            except FileNotFoundError:
                self.directory.mkdir(parents=True, exist_ok=True)
                handle = path.open("xb")
            with handle:
                handle.write(calling_ae_title.encode("ascii", "replace"))
        except FileExistsError:
            pass  # an earlier push of the study, not matched yet: its sender stays
        except OSError as exc:
            log.warning("pushed study %s: its sender could not be noted (%s)", study_uid, exc)

    def sender(self, study_uid: str) -> str | None:
        try:
            text = (self.directory / study_uid).read_bytes().decode("ascii", "replace").strip()
        except OSError:
            return None
        return text or None

    def clear(self, study_uid: str) -> None:
        with self._lock:
            self._marked.discard(study_uid)
        try:
            (self.directory / study_uid).unlink(missing_ok=True)
        except OSError as exc:
            log.warning(
                "pushed study %s: its sender note could not be removed (%s)", study_uid, exc
            )

    def keep_only(self, study_uids: Iterable[str]) -> int:
        """Remove the marks of every other study (matched, or cut off and found since);
        returns how many were removed."""
        keep = set(study_uids)
        removed = 0
        try:
            names = [p.name for p in self.directory.iterdir()]
        except FileNotFoundError:
            return 0
        except OSError as exc:
            log.warning("the notes of pushed studies' senders could not be listed (%s)", exc)
            return 0
        for name in names:
            if name not in keep:
                self.clear(name)
                removed += 1
        return removed


class PushedStudies:
    """Matches unsolicited pushes and files them: index or review queue."""

    def __init__(
        self,
        settings: Settings,
        store: StudyStore,
        index: StudyIndex,
        directory: PatientDirectory,
        review: ReviewSink,
        audit: AuditLog | None = None,
    ) -> None:
        self.settings = settings
        self.audit = audit
        self.store = store
        self.index = index
        self.directory = directory
        self.review = review
        self.marks = SenderMarks(settings.data_dir / SENDER_MARKS_DIR)
        self._expected: Callable[[str], bool] = lambda study_uid: False
        self._queue: queue.Queue[AssociationReceipt | FoundStudy | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._idle = threading.Condition()
        self._pending = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._work, name="pushed-studies", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Handle what was already received, then stop."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            # The files are in the store; only their matching is left undone.
            log.warning("pushed studies: %d receipts not handled before stopping", self._pending)
        self._thread = None

    def listen(self, scp: StorageSCP) -> None:
        """Subscribe to `scp`: receipts to match, instances to note the sender of."""
        self._expected = scp.is_expected
        scp.add_listener(self.landed)
        scp.add_receipt_listener(self.received)

    def landed(self, stored: StoredInstance) -> None:
        """`StorageSCP` instance listener (the association's thread): note who pushed a study
        before its association ends, for `push_recovery` should the process die first."""
        if not self._expected(stored.study_uid):
            self.marks.mark(stored.study_uid, stored.calling_ae_title)

    def received(self, receipt: AssociationReceipt) -> None:
        """`StorageSCP` receipt listener: runs on the association's thread, so only queues."""
        if not receipt.unsolicited:
            return
        with self._idle:
            self._pending += 1
        self._queue.put(receipt)

    def recover(self, study_uids: Iterable[str]) -> None:
        """Queue studies found in the store but never matched (`push_recovery`) for the same
        matching as a push."""
        for study_uid in study_uids:
            with self._idle:
                self._pending += 1
            self._queue.put(FoundStudy(study_uid))

    def wait_idle(self, timeout: float) -> bool:
        """True once every receipt queued so far is handled (tests, orderly shutdown)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _work(self) -> None:
        while True:
            work = self._queue.get()
            if work is None:
                return
            try:
                if isinstance(work, FoundStudy):
                    self.handle_found(work)
                else:
                    self.handle(work)
            except Exception:
                log.exception(
                    "pushed studies %s could not be matched; their files stay in the store "
                    "and are looked at again at the next start",
                    f"from {work.calling_ae_title}"
                    if isinstance(work, AssociationReceipt)
                    else f"found at start ({work.study_uid})",
                )
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    # -- matching ----------------------------------------------------------------------------

    def handle(self, receipt: AssociationReceipt) -> None:
        pacs_name = self.pacs_name_for(receipt.calling_ae_title)
        sender = Sender(receipt.calling_ae_title, receipt.calling_address)
        by_study: dict[str, list[StoredInstance]] = {}
        for stored in receipt.unsolicited:
            by_study.setdefault(stored.study_uid, []).append(stored)
        for study_uid, instances in by_study.items():
            filed = self._handle_study(pacs_name, study_uid, instances[0].path, sender)
            self.marks.clear(study_uid)
            if self.audit is not None:
                self.audit.record(
                    f"sender:{sender.ae_title}",
                    AuditAction.STUDY_RECEIVED,
                    study_subject(study_uid),
                    None,
                    {
                        "sender": sender.ae_title,
                        "address": sender.address,
                        "instances": len(instances),
                        "filed": filed,
                    },
                )

    def handle_found(self, found: FoundStudy) -> None:
        """Match a study found unmatched at start, as if its sender had just pushed it."""
        study_uid = found.study_uid
        if self.index.study(study_uid) is not None:
            # Indexed since the start's look (a fetch job resumed): nothing is left to match.
            log.info("study %s found at start has been indexed since; left alone", study_uid)
            self.marks.clear(study_uid)
            return
        first = next(self.store.study_dir(study_uid).glob("*/*.dcm"), None)
        if first is None:
            log.info(
                "study folder %s found at start holds no instance: nothing to match", study_uid
            )
            self.marks.clear(study_uid)
            return
        sender = self.marks.sender(study_uid)
        pacs_name = self.pacs_name_for(sender) if sender else UNKNOWN_SENDER
        self._handle_study(pacs_name, study_uid, first)
        self.marks.clear(study_uid)

    def pacs_name_for(self, calling_ae_title: str) -> str:
        """The configured PACS whose AE title sent it, else the calling AE title itself."""
        for entry in self.settings.pacs:
            if entry.ae_title == calling_ae_title:
                return entry.name
        return calling_ae_title

    def _handle_study(
        self, pacs_name: str, study_uid: str, header_path: Path, sender: Sender | None = None
    ) -> str:
        """Match one study from the header of one of its stored files, then index it or
        queue it for review; says which, in words for the audit."""
        header = _header(header_path, _PATIENT_TAGS)
        patient = patient_of(header)
        study = Study(
            study_uid=study_uid,
            patient=patient,
            study_date=date_value(header.get("StudyDate")),
            description=str(header.get("StudyDescription", "") or ""),
            accession_number=str(header.get("AccessionNumber", "") or ""),
            modalities=tuple(m for m in [str(header.get("Modality", "") or "")] if m),
            number_of_instances=_count_files(self.store, study_uid),
        )
        decision = self._decide(patient)
        where = f"{pacs_name} at {sender.address or '?'}" if sender else pacs_name
        if decision.auto_linked:
            indexed = self.index_from_store(pacs_name, study)
            log.info(
                "pushed study %s from %s matched automatically (%s); indexed %d instances",
                study_uid,
                where,
                decision.rule,
                indexed.instance_count if indexed else 0,
            )
            return "indexed: matched automatically"
        if sender is not None:
            decision = replace(
                decision, reasons=(*decision.reasons, f"Sent by {sender.describe()}.")
            )
        details = self._details(decision)
        item, created = self.review.add(
            origin=ReviewOrigin.PUSH,
            pacs_name=pacs_name,
            patient=patient,
            study=study,
            decision=decision,
            details=details,
        )
        if item.state is ReviewState.DISMISSED:
            log.info(
                "pushed study %s from %s was dismissed in review item %s; its files stay in "
                "the store",
                study_uid,
                where,
                item.id,
            )
            return f"kept: dismissed earlier in review item {item.id}"
        log.info(
            "pushed study %s from %s %s review item %s",
            study_uid,
            where,
            "is" if created else "is already",
            item.id,
        )
        return f"review item {item.id}"

    def _decide(self, patient: PacsPatient) -> MatchDecision:
        try:
            matcher = self.directory.matcher()
        except sa.exc.SQLAlchemyError as exc:
            log.warning("pushed study: R4 could not be read (%s)", type(exc).__name__)
            return _no_match(patient, R4_UNREADABLE_REASON)
        if matcher is None:
            return _no_match(patient, NO_R4_REASON)
        return matcher.match(patient)

    def _details(self, decision: MatchDecision) -> dict[int, dict[str, str | None]]:
        try:
            return self.directory.details([c.r4_patient_id for c in decision.candidates])
        except sa.exc.SQLAlchemyError:
            return {}  # the candidates still carry ids, scores and reasons

    # -- indexing ----------------------------------------------------------------------------

    def index_from_store(self, pacs_name: str, study: Study) -> IndexedStudy | None:
        """Index every stored instance of `study` that names its patient (replacing earlier
        rows); None if the store holds none such.

        A file naming another patient is left out: the folder may hold the PACS's copy that
        replaced a push since it was queued for review, and that copy is another patient's
        (or a different issuer's) until a fetch files it under its own."""
        study_dir = self.store.study_dir(study.study_uid)
        if not study_dir.is_dir():
            return None
        instances: list[Instance] = []
        sizes: dict[str, int] = {}
        modalities: set[str] = set(study.modalities)
        others = 0
        for path in sorted(study_dir.glob("*/*.dcm")):
            header = _header(path, _INSTANCE_TAGS)
            if str(header.get("PatientID", "") or "") != study.patient.patient_id or str(
                header.get("IssuerOfPatientID", "") or ""
            ) != (study.patient.issuer_of_patient_id or ""):
                others += 1
                continue
            sop = path.stem
            instances.append(
                Instance(
                    study_uid=study.study_uid,
                    series_uid=path.parent.name,
                    sop_instance_uid=sop,
                    sop_class_uid=str(header.get("SOPClassUID", "") or ""),
                    number=int_value(header.get("InstanceNumber")),
                )
            )
            sizes[sop] = path.stat().st_size
            modality = str(header.get("Modality", "") or "")
            if modality:
                modalities.add(modality)
        if others:
            log.warning(
                "study %s: %d stored files name another patient than its review item; "
                "left out of the index",
                study.study_uid,
                others,
            )
        if not instances:
            return None
        found = Study(
            study_uid=study.study_uid,
            patient=study.patient,
            study_date=study.study_date,
            description=study.description,
            accession_number=study.accession_number,
            modalities=tuple(sorted(modalities)),
        )
        self.index.record_study(pacs_name, found, instances, sizes, None)
        return self.index.study(study.study_uid)

    def attach(self, item: ReviewItem) -> IndexedStudy | None:
        """Index a resolved push item's study from the store (None if no file of it is left)."""
        fields = item.pacs_patient
        patient = PacsPatient(
            patient_id=str(fields.get("patient_id") or ""),
            issuer_of_patient_id=str(fields.get("issuer") or ""),
        )
        study = Study(
            study_uid=item.study_uid,
            patient=patient,
            study_date=item.study_date,
            description=item.study_description,
            modalities=item.modalities,
        )
        indexed = self.index_from_store(item.pacs_name or "", study)
        if indexed is None:
            log.warning("review item %s: no file of its study is in the store", item.id)
        else:
            log.info("review item %s: study %s attached", item.id, item.study_uid)
        return indexed


def _no_match(patient: PacsPatient, reason: str) -> MatchDecision:
    return MatchDecision.review(patient.patient_id, (ReviewReason.NO_CANDIDATE,), (reason,), ())


def _header(path: Path, tags: Sequence[str]) -> Dataset:
    return dcmread(path, stop_before_pixels=True, specific_tags=list(tags))


def _count_files(store: StudyStore, study_uid: str) -> int:
    return sum(1 for _ in store.study_dir(study_uid).glob("*/*.dcm"))
