"""Opening associations with a peer: timeouts, per-PACS limits, and failures turned into errors."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from pynetdicom import AE, _config, evt
from pynetdicom.association import Association
from pynetdicom.presentation import PresentationContext

from pacs import observe
from pacs.errors import AssociationRejected, PacsUnreachable, TlsRefused
from pacs.models import Peer
from pacs.tls import TlsConfigurationError, client_problem

# pynetdicom logs query identifiers (names, ids, birth dates) at INFO by default.
_config.LOG_REQUEST_IDENTIFIERS = False
_config.LOG_RESPONSE_IDENTIFIERS = False


def _no_delay(event: evt.Event) -> None:
    # pynetdicom sends a request's command set and its identifier as two writes. With
    # Nagle's algorithm on, the second can wait for the peer's delayed ACK (about 40 ms on
    # Linux): measured against Orthanc, a STUDY-level C-FIND took 45 ms, 3 ms with
    # TCP_NODELAY, and each job made one or more of them before its first image.
    _set_option(event, socket.TCP_NODELAY)


def _quick_ack(event: evt.Event) -> None:
    # The same wait the other way round, which only our side can shorten: a PACS that keeps
    # Nagle's algorithm on (DCMTK's default) writes each answer as several small sends and
    # holds all but the first until we ACK it, and after sending a request Linux delays
    # that ACK by about 40 ms. Quick-ACK mode is not sticky (the kernel drops it again), so
    # it is asked for after every PDU we send. Measured against dcmqrscp: a STUDY-level
    # C-FIND took 46 ms, 4 ms with this.
    _set_option(event, socket.TCP_QUICKACK)


def _set_option(event: evt.Event, option: int) -> None:
    sock = event.assoc.dul.socket
    if sock is not None and sock.socket is not None:
        # A connection reset before this runs (a port scan of the SCP) fails on its own.
        with suppress(OSError):
            sock.socket.setsockopt(socket.IPPROTO_TCP, option, 1)


# For every association, ours and those a PACS opens to our Storage SCP. TCP_QUICKACK is
# Linux's: elsewhere (Windows, macOS) the system's delayed ACK stays (docs/configuration.md).
TCP_HANDLERS: tuple[evt.EventHandlerType, ...] = (
    (evt.EVT_CONN_OPEN, _no_delay),
    *([(evt.EVT_DATA_SENT, _quick_ack)] if hasattr(socket, "TCP_QUICKACK") else []),
)

_limits: dict[tuple[str, int, str, int], threading.BoundedSemaphore] = {}
_limits_lock = threading.Lock()


def _limit_for(peer: Peer) -> threading.BoundedSemaphore:
    # The limit is part of the key so that a peer configured anew gets its new limit.
    key = (peer.host, peer.port, peer.ae_title, peer.max_associations)
    with _limits_lock:
        if key not in _limits:
            _limits[key] = threading.BoundedSemaphore(max(1, peer.max_associations))
        return _limits[key]


@contextmanager
def open_association(
    peer: Peer,
    calling_ae_title: str,
    contexts: Sequence[PresentationContext],
    *,
    ext_neg: Sequence[Any] | None = None,
    evt_handlers: Sequence[Any] | None = None,
    maximum_pdu_size: int = 0,
) -> Iterator[Association]:
    """Yield an established association, released on exit.

    Waits for a free slot under the peer's `max_associations`, so concurrent jobs never
    open more associations than the PACS is configured to accept from us.
    """
    try:
        tls_args = (peer.tls.context(), peer.host) if peer.tls is not None else None
    except TlsConfigurationError as exc:
        raise TlsRefused(
            f"The TLS settings of the PACS {peer.label} cannot be used: {exc}"
        ) from None
    with _limit_for(peer):
        ae = AE(ae_title=calling_ae_title)
        ae.requested_contexts = list(contexts)
        ae.connection_timeout = peer.connect_timeout
        ae.acse_timeout = peer.acse_timeout
        ae.dimse_timeout = peer.dimse_timeout
        ae.network_timeout = max(peer.dimse_timeout, 60.0)
        ae.maximum_pdu_size = maximum_pdu_size
        assoc = ae.associate(
            peer.host,
            peer.port,
            ae_title=peer.ae_title,
            ext_neg=list(ext_neg or []),
            evt_handlers=[*TCP_HANDLERS, *(evt_handlers or [])],
            tls_args=tls_args,
        )
        if not assoc.is_established:
            observe.association_failed(peer.name)
            raise _association_error(peer, assoc, calling_ae_title)
        try:
            yield assoc
        finally:
            if assoc.is_established:
                assoc.release()


def _association_error(
    peer: Peer, assoc: Association, calling: str
) -> PacsUnreachable | AssociationRejected | TlsRefused:
    if assoc.is_rejected and assoc.acceptor.primitive is not None:
        rj = assoc.acceptor.primitive
        reason = rj.reason_str
        transient = rj.result == 2
        hint = ""
        if "Calling AE title" in reason:
            hint = f" Add the gateway's AE title {calling} to the PACS's known modalities."
        elif "Called AE title" in reason:
            hint = f" Check the PACS's AE title (configured: {peer.ae_title})."
        message = f"The PACS {peer.label} rejected the association: {reason}.{hint}"
        return AssociationRejected(message, transient=transient, reason=reason)
    where = f"{peer.host}:{peer.port}"
    unreachable = _why_unreachable(peer, where)
    if unreachable is not None:
        return PacsUnreachable(f"The PACS {peer.label} could not be reached: {unreachable}.")
    tls = client_problem(peer.host, peer.port, peer.tls, peer.connect_timeout)
    if tls is not None:
        over = " over TLS" if peer.tls is not None else ""
        return TlsRefused(f"The PACS {peer.label} at {where} could not be used{over}: {tls}.")
    return PacsUnreachable(
        f"The PACS {peer.label} could not be reached: {where} accepts connections but did "
        f"not complete a DICOM association within {peer.acse_timeout:g} s."
    )


def _why_unreachable(peer: Peer, where: str) -> str | None:
    """Say why no connection came up (None: TCP connects); pynetdicom only writes the cause
    to its log. Runs on the failure path only, so the extra probes cost nothing when all is
    well."""
    try:
        with socket.create_connection((peer.host, peer.port), timeout=peer.connect_timeout):
            pass
    except ConnectionRefusedError:
        return f"nothing is listening on {where} (connection refused)"
    except TimeoutError:
        return f"no answer from {where} within {peer.connect_timeout:g} s"
    except OSError as exc:
        return f"the network refused the connection to {where} ({exc.strerror or exc})"
    return None
