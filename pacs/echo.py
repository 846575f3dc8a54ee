"""C-ECHO: is the PACS there, and how fast does it answer."""

from __future__ import annotations

import time

from pynetdicom import build_context
from pynetdicom.sop_class import Verification

from pacs import observe
from pacs.association import open_association
from pacs.errors import dimse_failure
from pacs.models import Peer


def echo(peer: Peer, calling_ae_title: str) -> float:
    """Return the round trip of association + C-ECHO in seconds, or raise a `PacsError`."""
    started = time.perf_counter()
    with open_association(peer, calling_ae_title, [build_context(Verification)]) as assoc:
        status = assoc.send_c_echo()
    if not status or "Status" not in status:
        raise dimse_failure("C-ECHO", 0xC000, peer.label, "no answer")
    if status.Status != 0x0000:
        raise dimse_failure("C-ECHO", int(status.Status), peer.label)
    seconds = time.perf_counter() - started
    observe.echo_answered(peer.name, seconds)
    return seconds
