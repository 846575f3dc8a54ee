"""The gateway's Storage SCP: receives C-MOVE'd and pushed instances into the study store.

Two kinds of subscriber:
- instance listeners hear of every instance as it is filed (a retrieve counting arrivals);
- receipt listeners hear, once an association has ended (released, aborted or cut off), of
  everything it delivered, with the studies a retrieve of this process was waiting for
  (`expecting`) told apart from the rest: those are the unsolicited pushes.

Files are kept as the sender has them: each storage context is accepted in the first transfer
syntax the sender proposes, so no sender is ever asked to convert.

Who may associate, from where and how many at once is `pacs.admission`'s (checked when the
A-ASSOCIATE-RQ arrives, and per address when the connection opens). An instance counts as
asked for only when a retrieve waits for its study (`expecting`) from the AE title that sent
it and the file's PatientID (and IssuerOfPatientID, when the PACS gave one) are those of the
PACS's C-FIND answer; a file claiming such a study but failing that is held back
(`pacs.store.Origin.HELD`), anything else is a push.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import socket
import ssl
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, _config, evt
from pynetdicom.association import Association
from pynetdicom.events import Event
from pynetdicom.sop_class import Verification
from pynetdicom.transport import ThreadedAssociationServer

from pacs.admission import Senders, parse_address
from pacs.association import TCP_HANDLERS
from pacs.models import LocalNode
from pacs.receive import (
    Arrival,
    InstanceListener,
    discard_partial,
    pushed,
    receive_into,
    store_handler,
)
from pacs.store import Origin, StoredInstance, StudyStore
from pacs.tls import TlsServer, server_problem

log = logging.getLogger(__name__)

# Seconds a new connection may take to send its A-ASSOCIATE-RQ (and a peer to answer release).
ACSE_TIMEOUT = 5.0


@dataclass(frozen=True)
class Expected:
    """A study a retrieve of this process waits for: from which AE title, for which patient
    (as the PACS's C-FIND answered; `patient_id` None: not known, not checked)."""

    study_uid: str
    ae_title: str = ""
    patient_id: str | None = None
    issuer_of_patient_id: str = ""

    def problem(self, arrival: Arrival) -> str | None:
        """Why `arrival` is not this retrieve's (None: it is)."""
        if self.ae_title and arrival.calling_ae_title.strip() != self.ae_title.strip():
            return (
                f"claims a study being retrieved from {self.ae_title} but was sent by "
                f"{arrival.calling_ae_title}"
            )
        header = arrival.header
        if self.patient_id is not None and header.patient_id.strip() != self.patient_id.strip():
            return "its PatientID is not the one the PACS's C-FIND answered for the study"
        issuer = self.issuer_of_patient_id.strip()
        if issuer and header.issuer_of_patient_id.strip() != issuer:
            return "its IssuerOfPatientID is not the one the PACS's C-FIND answered"
        return None


@dataclass(frozen=True)
class AssociationReceipt:
    """What one association delivered, reported after it ended."""

    calling_ae_title: str
    instances: tuple[StoredInstance, ...]  # every instance filed, new or repeated
    # Studies a running retrieve of this process was waiting for when some of their
    # instances arrived on this association: the whole study counts as asked for.
    requested_studies: frozenset[str]
    calling_address: str = ""

    @property
    def unsolicited(self) -> tuple[StoredInstance, ...]:
        """What was pushed: instances of studies nobody asked for, held-back ones aside."""
        return tuple(
            i for i in self.instances if i.study_uid not in self.requested_studies and i.kept
        )

    @property
    def held_back(self) -> tuple[StoredInstance, ...]:
        return tuple(i for i in self.instances if not i.kept)


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

    def __init__(self, calling_ae_title: str, calling_address: str) -> None:
        self.calling_ae_title = calling_ae_title
        self.calling_address = calling_address
        self.instances: list[StoredInstance] = []
        self.requested: set[str] = set()


@dataclass(frozen=True)
class _Admitted:
    address: object
    pacs: bool


class StorageSCP:
    """Listens on our AE title and port; accepts only the calling AE titles it is given.

    Listeners are told about every instance filed (new or repeated), on the association's
    thread: a retrieve in progress subscribes to count what lands for its study.
    """

    def __init__(
        self,
        local: LocalNode,
        store: StudyStore,
        senders: Senders | Iterable[str],
        tls: TlsServer | None = None,
    ) -> None:
        """`senders`: the admission rules, or (older spelling, tests) AE titles let in from
        any address, to which `local.allowed_calling_aets` are added. `tls`: the port
        speaks DICOM over TLS only (see `_accept`)."""
        self.local = local
        self.store = store
        self.tls = tls
        self._handshaking: Counter[str] = Counter()
        if not isinstance(senders, Senders):
            senders = Senders.build([], sorted({*senders, *local.allowed_calling_aets}))
        self.senders = senders
        self.allowed_calling_aets = senders.ae_titles
        self._listeners: list[InstanceListener] = []
        self._receipt_listeners: list[ReceiptListener] = []
        self._expected: dict[str, list[Expected]] = {}  # study uid -> retrieves waiting
        self._receiving: dict[Association, _Receiving] = {}
        self._admitted: dict[Association, _Admitted] = {}
        self._lock = threading.Lock()
        self._server: ThreadedAssociationServer | None = None
        # Instances our own store could not write (disk full, permissions), ever.
        self.store_failures = 0
        # Associations and connections refused by `senders`, ever.
        self.refused_associations = 0
        self.refused_connections = 0

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
        ae.maximum_pdu_size = self.local.maximum_pdu_size
        limits = self.senders.limits
        # The admission rules bound what is admitted (`_on_requested`); pynetdicom's own cap
        # counts connections still waiting to send their request too, so it is set wider
        # than ours and never refuses what they let in.
        ae.maximum_associations = limits.total * 4
        # An admitted association silent this long is cut: a sender that opens associations
        # and sends nothing cannot keep its slots for pynetdicom's default 60 s.
        ae.network_timeout = limits.idle_timeout
        # A connection closed before any A-ASSOCIATE-RQ (a TCP health check, a port scan)
        # holds one of those slots until the ACSE timeout: pynetdicom 3.0.4 keeps waiting for
        # the request on a dead socket. With the default 30 s, 16 such probes refused every
        # PACS for 30 s (the fuzzing drill found it). A real peer sends its request at once.
        ae.acse_timeout = ACSE_TIMEOUT
        handlers = [
            *TCP_HANDLERS,
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_C_STORE, self._on_c_store),
            (evt.EVT_CONN_CLOSE, self._on_close),
        ]
        tls_context = self.tls.context() if self.tls is not None else None
        self._server = server = ae.start_server(
            (self.local.bind_address, self.local.port), block=False, evt_handlers=handlers
        )
        # socketserver asks this before it spends a thread on a connection.
        server.verify_request = self._verify_connection  # type: ignore[method-assign]
        if tls_context is not None:
            server.get_request = functools.partial(self._accept, server, tls_context)  # type: ignore[method-assign]
            server.finish_request = functools.partial(self._handshake, server.finish_request)  # type: ignore[method-assign]
        log.info(
            "Storage SCP %s listening on port %d%s",
            self.local.ae_title,
            self.port,
            " (DICOM over TLS only)" if tls_context is not None else "",
        )
        for ae_title in self.senders.ignored:
            log.warning(
                "allowed_calling_aets names %s, a configured PACS, without a host: it is let "
                "in from that PACS's host only",
                ae_title,
            )

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
    def expecting(self, expected: Expected | str) -> Iterator[None]:
        """While inside, instances of the study arrive because we asked for them (C-MOVE),
        when they come from whom and are of the patient `expected` names."""
        if isinstance(expected, str):
            expected = Expected(expected)
        study_uid = expected.study_uid
        with self._lock:
            self._expected.setdefault(study_uid, []).append(expected)
        try:
            yield
        finally:
            with self._lock:
                waiting = self._expected[study_uid]
                waiting.remove(expected)
                if not waiting:
                    del self._expected[study_uid]

    def classify(self, arrival: Arrival) -> tuple[Origin, str]:
        """How the store places an arrival (see the module docs)."""
        with self._lock:
            waiting = list(self._expected.get(arrival.header.study_uid, ()))
        if not waiting:
            return pushed(arrival)
        problems = [w.problem(arrival) for w in waiting]
        if any(p is None for p in problems):
            return Origin.RETRIEVED, ""
        return Origin.HELD, str(problems[0])

    def _verify_connection(self, request: object, client_address: tuple[str, int]) -> bool:
        """Close a new connection at once when its address already has its share open."""
        address = parse_address(str(client_address[0]))
        server = self._server
        if server is None:
            return False
        open_here = sum(
            1
            for a in server.active_associations
            if parse_address(str(a.requestor.address)) == address
        )
        with self._lock:
            open_here += self._handshaking[address]
        if open_here < self.senders.limits.per_address:
            return True
        with self._lock:
            self.refused_connections += 1
        log.warning("Closed a connection from %s: it already has %d open", address, open_here)
        return False

    def _accept(
        self, server: ThreadedAssociationServer, context: ssl.SSLContext
    ) -> tuple[socket.socket, tuple[str, int]]:
        """socketserver's accept, in its one listening thread: the TLS handshake is left to
        the connection's own thread (`_handshake`). pynetdicom would shake hands here, and
        one sender that opens a connection and sends nothing would hold every other up."""
        assert server.socket is not None
        raw, address = server.socket.accept()
        raw.settimeout(self.senders.limits.idle_timeout)
        wrapped = context.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
        return wrapped, address

    def _handshake(
        self,
        finish_request: Callable[[object, tuple[str, int]], None],
        request: ssl.SSLSocket,
        client_address: tuple[str, int],
    ) -> None:
        """In the connection's thread: the TLS handshake, then the association; a failed
        handshake closes the connection with one log line and no association."""
        address = parse_address(str(client_address[0]))
        with self._lock:
            self._handshaking[address] += 1
        try:
            request.do_handshake()
            request.settimeout(None)
        except (OSError, ValueError) as exc:
            with self._lock:
                self.refused_connections += 1
            log.warning(
                "Refused a TLS connection from %s: %s",
                address,
                server_problem(exc, self.senders.limits.idle_timeout),
            )
            with contextlib.suppress(OSError):
                request.close()
            return
        finally:
            with self._lock:
                self._handshaking[address] -= 1
                if not self._handshaking[address]:
                    del self._handshaking[address]
        finish_request(request, client_address)

    def _on_requested(self, event: Event) -> None:
        """EVT_REQUESTED: admit the association or reject it before negotiation."""
        assoc = event.assoc
        calling = str(assoc.requestor.primitive.calling_ae_title or "").strip()
        address = parse_address(str(assoc.requestor.address))
        with self._lock:
            for gone in [a for a in self._admitted if not a.is_alive() and a is not assoc]:
                del self._admitted[gone]  # ended without a close event: not counted
            admitted = list(self._admitted.values())
            refusal = self.senders.refusal(
                calling,
                address,
                open_from_address=sum(1 for a in admitted if a.address == address),
                open_total=len(admitted),
                open_not_pacs=sum(1 for a in admitted if not a.pacs),
            )
            if refusal is None:
                self._admitted[assoc] = _Admitted(address, self.senders.is_pacs_address(address))
            else:
                self.refused_associations += 1
        if refusal is None:
            return
        log.warning("Refused an association from %s at %s: %s", calling, address, refusal.reason)
        # As pynetdicom's own negotiation rejects: the A-ASSOCIATE-RJ, then the association
        # ends; EVT_REQUESTED is where pynetdicom lets a handler do so.
        assoc.acse.send_reject(refusal.result, refusal.source, refusal.diagnostic)
        assoc.kill()

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
                    receiving = self._receiving[assoc] = _Receiving(
                        assoc.requestor.ae_title, stored.calling_address
                    )
                receiving.instances.append(stored)
                if stored.study_uid in self._expected:
                    receiving.requested.add(stored.study_uid)
            self._notify(stored)

        def failed() -> None:
            with self._lock:
                self.store_failures += 1

        return store_handler(self.store, landed, failed, self.classify)(event)

    def _on_close(self, event: Event) -> None:
        discard_partial(event)
        with self._lock:
            self._admitted.pop(event.assoc, None)
            receiving = self._receiving.pop(event.assoc, None)
            listeners = list(self._receipt_listeners)
        if receiving is None or not receiving.instances:
            return
        receipt = AssociationReceipt(
            calling_ae_title=receiving.calling_ae_title,
            instances=tuple(receiving.instances),
            requested_studies=frozenset(receiving.requested),
            calling_address=receiving.calling_address,
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
