"""The gateway's Storage SCP: receives C-MOVE'd and pushed instances into the study store."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification
from pynetdicom.transport import ThreadedAssociationServer

from pacs.models import LocalNode
from pacs.receive import InstanceListener, discard_partial, receive_into, store_handler
from pacs.store import StoredInstance, StudyStore

log = logging.getLogger(__name__)

# Seconds a new connection may take to send its A-ASSOCIATE-RQ (and a peer to answer release).
ACSE_TIMEOUT = 5.0


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
        self._lock = threading.Lock()
        self._server: ThreadedAssociationServer | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            return self.local.port
        return int(self._server.server_address[1])

    def start(self) -> None:
        receive_into(self.store)
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
            (evt.EVT_C_STORE, store_handler(self.store, self._notify)),
            (evt.EVT_CONN_CLOSE, discard_partial),
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
