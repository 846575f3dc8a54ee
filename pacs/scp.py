"""The gateway's Storage SCP: receives C-MOVE'd and pushed instances into the study store.

Two kinds of subscriber:
- instance listeners hear of every instance as it is filed (a retrieve counting arrivals);
- receipt listeners hear, once an association has ended (released, aborted or cut off), of
  everything it delivered, with the studies a retrieve of this process was waiting for
  (`expecting`) told apart from the rest: those are the unsolicited pushes.

Files are kept as the sender has them: each storage context is accepted in the first transfer
syntax the sender proposes, so no sender is ever asked to convert.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, _config, evt
from pynetdicom.association import Association
from pynetdicom.events import Event
from pynetdicom.sop_class import Verification
from pynetdicom.transport import ThreadedAssociationServer

from pacs.association import TCP_HANDLERS
from pacs.models import LocalNode
from pacs.receive import InstanceListener, discard_partial, receive_into, store_handler
from pacs.store import StoredInstance, StudyStore

log = logging.getLogger(__name__)

# Seconds a new connection may take to send its A-ASSOCIATE-RQ (and a peer to answer release).
ACSE_TIMEOUT = 5.0


@dataclass(frozen=True)
class AssociationReceipt:
    """What one association delivered, reported after it ended."""

    calling_ae_title: str
    instances: tuple[StoredInstance, ...]  # every instance filed, new or repeated
    # Studies a running retrieve of this process was waiting for when some of their
    # instances arrived on this association: the whole study counts as asked for.
    requested_studies: frozenset[str]

    @property
    def unsolicited(self) -> tuple[StoredInstance, ...]:
        return tuple(i for i in self.instances if i.study_uid not in self.requested_studies)


ReceiptListener = Callable[[AssociationReceipt], None]


def accept_storage_as_proposed() -> None:
    """Accept, for every storage context, the first transfer syntax the sender proposes.

    pynetdicom's acceptor otherwise walks *our* list and takes our first match: with Implicit
    VR first, DCMTK rewrote Explicit VR files on the way, and a PACS unable to decompress
    (dcmqrscp with RLE files) could not send at all. The sender lists first what it holds,
    so taking its order keeps files as the PACS has them and never asks for a conversion.
    pynetdicom's unrestricted storage service does exactly this (process-wide; the Storage
    SCP is this process's only acceptor). It also accepts storage classes pynetdicom does not
    know; the store handler still refuses any dataset it cannot read.
    """
    _config.UNRESTRICTED_STORAGE_SERVICE = True


class _Receiving:
    """Collects one association's instances while it runs."""

    def __init__(self, calling_ae_title: str) -> None:
        self.calling_ae_title = calling_ae_title
        self.instances: list[StoredInstance] = []
        self.requested: set[str] = set()


class StorageSCP:
    """Listens on our AE title and port; accepts only the calling AE titles it is given.

    Listeners are told about every instance filed (new or repeated), on the association's
    thread: a retrieve in progress subscribes to count what lands for its study.
    """

    def __init__(
        self, local: LocalNode, store: StudyStore, allowed_calling_aets: Iterable[str]
    ) -> None:
        self.local = local
        self.store = store
        self.allowed_calling_aets = sorted({*allowed_calling_aets, *local.allowed_calling_aets})
        self._listeners: list[InstanceListener] = []
        self._receipt_listeners: list[ReceiptListener] = []
        self._expected: dict[str, int] = {}  # study uid -> retrieves waiting for it
        self._receiving: dict[Association, _Receiving] = {}
        self._lock = threading.Lock()
        self._server: ThreadedAssociationServer | None = None
        # Instances our own store could not write (disk full, permissions), ever.
        self.store_failures = 0

    @property
    def port(self) -> int:
        if self._server is None:
            return self.local.port
        return int(self._server.server_address[1])

    def start(self) -> None:
        receive_into(self.store)
        accept_storage_as_proposed()
        ae = AE(ae_title=self.local.ae_title)
        for context in AllStoragePresentationContexts:
            ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        ae.add_supported_context(Verification)
        ae.require_calling_aet = self.allowed_calling_aets
        ae.maximum_pdu_size = self.local.maximum_pdu_size
        # Associations from a PACS pushing a large study in parallel plus retrieves in flight.
        ae.maximum_associations = 16
        # A connection closed before any A-ASSOCIATE-RQ (a TCP health check, a port scan)
        # holds one of those slots until the ACSE timeout: pynetdicom 3.0.4 keeps waiting for
        # the request on a dead socket. With the default 30 s, 16 such probes refused every
        # PACS for 30 s (the fuzzing drill found it). A real peer sends its request at once.
        ae.acse_timeout = ACSE_TIMEOUT
        handlers = [
            *TCP_HANDLERS,
            (evt.EVT_C_STORE, self._on_c_store),
            (evt.EVT_CONN_CLOSE, self._on_close),
        ]
        self._server = ae.start_server(
            (self.local.bind_address, self.local.port), block=False, evt_handlers=handlers
        )
        log.info("Storage SCP %s listening on port %d", self.local.ae_title, self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def add_listener(self, listener: InstanceListener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: InstanceListener) -> None:
        with self._lock:
            self._listeners.remove(listener)

    def add_receipt_listener(self, listener: ReceiptListener) -> None:
        with self._lock:
            self._receipt_listeners.append(listener)

    def remove_receipt_listener(self, listener: ReceiptListener) -> None:
        with self._lock:
            self._receipt_listeners.remove(listener)

    @contextmanager
    def expecting(self, study_uid: str) -> Iterator[None]:
        """While inside, instances of `study_uid` arrive because we asked for them (C-MOVE)."""
        with self._lock:
            self._expected[study_uid] = self._expected.get(study_uid, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._expected[study_uid] - 1
                if left:
                    self._expected[study_uid] = left
                else:
                    del self._expected[study_uid]

    def is_expected(self, study_uid: str) -> bool:
        """Whether a retrieve of this process is waiting for `study_uid` now (`expecting`)."""
        with self._lock:
            return study_uid in self._expected

    def _on_c_store(self, event: Event) -> int:
        assoc = event.assoc

        def landed(stored: StoredInstance) -> None:
            with self._lock:
                receiving = self._receiving.get(assoc)
                if receiving is None:
                    receiving = self._receiving[assoc] = _Receiving(assoc.requestor.ae_title)
                receiving.instances.append(stored)
                if stored.study_uid in self._expected:
                    receiving.requested.add(stored.study_uid)
            self._notify(stored)

        def failed() -> None:
            with self._lock:
                self.store_failures += 1

        return store_handler(self.store, landed, failed)(event)

    def _on_close(self, event: Event) -> None:
        discard_partial(event)
        with self._lock:
            receiving = self._receiving.pop(event.assoc, None)
            listeners = list(self._receipt_listeners)
        if receiving is None or not receiving.instances:
            return
        receipt = AssociationReceipt(
            calling_ae_title=receiving.calling_ae_title,
            instances=tuple(receiving.instances),
            requested_studies=frozenset(receiving.requested),
        )
        for listener in listeners:
            try:
                listener(receipt)
            except Exception:
                log.exception("A receipt listener failed")

    def _notify(self, stored: StoredInstance) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(stored)
            except Exception:
                log.exception("A storage listener failed")

    def __enter__(self) -> StorageSCP:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
