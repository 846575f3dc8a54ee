"""Who may open an association to the Storage SCP, from where, and how many at once.

A calling AE title is a claim anyone on the network can make. So:
- a configured PACS's AE title is accepted only from that PACS's own host (the addresses its
  configured name resolves to): a sender elsewhere claiming it is refused at A-ASSOCIATE-RQ;
- other allowed senders are written `AET` (from anywhere, as before), `AET@host` or
  `AET@network` (`CT1@10.0.0.7`, `CT1@ct1.practice.local`, `US@10.0.2.0/24`). A bare entry
  naming a configured PACS's AE title does not widen that PACS's host rule: it is ignored, and
  `ignored` lists it so the operator hears of it;
- at most `per_address` associations from one address at once, and `reserved` of the `total`
  are kept for the configured PACS's hosts, so a flood from one address, or from many that
  are not a PACS, cannot take the room a C-MOVE needs. Connections beyond the per-address cap
  are closed before a thread is spent on them.

Host names are resolved when first needed and again at most every `RESOLVE_SECONDS` when an
address is refused, so a PACS whose address changed is let in again without a restart.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

RESOLVE_SECONDS = 60.0


def parse_address(text: str) -> Address | None:
    """The address a socket reports, IPv4-mapped IPv6 (`::ffff:10.0.0.5`) as IPv4."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass
class _Place:
    """A host name or a network, resolved to networks when needed."""

    text: str
    networks: tuple[Network, ...] = ()
    resolved_at: float | None = None

    def __post_init__(self) -> None:
        try:
            self.networks = (ipaddress.ip_network(self.text, strict=False),)
            self.resolved_at = float("inf")  # a literal: never resolved again
        except ValueError:
            pass

    def contains(self, address: Address) -> bool:
        if self.resolved_at is None:
            self._resolve()
        if any(address in n for n in self.networks if n.version == address.version):
            return True
        assert self.resolved_at is not None
        if time.monotonic() - self.resolved_at > RESOLVE_SECONDS:
            self._resolve()
            return any(address in n for n in self.networks if n.version == address.version)
        return False

    def _resolve(self) -> None:
        self.resolved_at = time.monotonic()
        try:
            infos = socket.getaddrinfo(self.text, None, proto=socket.IPPROTO_TCP)
        except OSError as exc:
            log.warning(
                "The host %s could not be resolved (%s): nothing is let in from it "
                "until it resolves",
                self.text,
                exc.strerror or exc,
            )
            self.networks = ()
            return
        addresses = {parse_address(str(info[4][0])) for info in infos}
        self.networks = tuple(
            ipaddress.ip_network(a) for a in sorted(addresses - {None}, key=str) if a
        )


@dataclass(frozen=True)
class SenderRule:
    """One AE title and where it may call from (`places` empty: anywhere)."""

    ae_title: str
    places: tuple[_Place, ...] = ()
    pacs: bool = False  # a configured PACS: its addresses share the reserved room

    @classmethod
    def parse(cls, entry: str) -> SenderRule:
        """`AET`, `AET@host` or `AET@network`; ValueError for an empty AE title or place."""
        ae_title, at, place = entry.strip().rpartition("@") if "@" in entry else (entry, "", "")
        ae_title, place = ae_title.strip(), place.strip()
        if not ae_title or (at and not place) or len(ae_title) > 16:
            raise ValueError(
                f"{entry!r} is not an allowed sender: write AET, AET@host or AET@network "
                "(an AE title of at most 16 characters)"
            )
        return cls(ae_title, (_Place(place),) if place else ())

    def admits(self, address: Address | None) -> bool:
        if not self.places:
            return True
        return address is not None and any(p.contains(address) for p in self.places)


@dataclass(frozen=True)
class InboundLimits:
    """Bounds on associations others open to the Storage SCP."""

    total: int = 16
    per_address: int = 4
    reserved: int = 4  # of `total`, only for configured PACS hosts
    idle_timeout: float = 15.0  # seconds without a PDU before an inbound association is cut


@dataclass(frozen=True)
class Refusal:
    """Why an association was refused, as the A-ASSOCIATE-RJ says it and as a log says it."""

    result: int  # 1 permanent, 2 transient
    source: int
    diagnostic: int
    reason: str


CALLING_AE_NOT_RECOGNISED = (0x01, 0x01, 0x03)
LOCAL_LIMIT_EXCEEDED = (0x02, 0x03, 0x02)


@dataclass(frozen=True)
class Senders:
    """The admission rules of one Storage SCP. Stateless but for the host names' cache:
    the SCP counts what is open (`pacs.scp`), from its live associations."""

    rules: Sequence[SenderRule]
    limits: InboundLimits = field(default_factory=InboundLimits)
    ignored: tuple[str, ...] = ()

    @classmethod
    def build(
        cls,
        pacs: Iterable[tuple[str, str]],
        allowed: Iterable[str] = (),
        limits: InboundLimits | None = None,
    ) -> Senders:
        """From the configured PACS (`(ae_title, host)`) and the `allowed_calling_aets`
        entries. ValueError names an entry that cannot be read."""
        rules: list[SenderRule] = []
        pacs_titles: set[str] = set()
        for ae_title, host in pacs:
            rules.append(SenderRule(ae_title, (_Place(host),), pacs=True))
            pacs_titles.add(ae_title)
        ignored: list[str] = []
        for entry in allowed:
            rule = SenderRule.parse(entry)
            if rule.ae_title in pacs_titles and not rule.places:
                ignored.append(rule.ae_title)
                continue
            rules.append(rule)
        return cls(tuple(rules), limits or InboundLimits(), tuple(dict.fromkeys(ignored)))

    @classmethod
    def anywhere(cls, ae_titles: Iterable[str], limits: InboundLimits | None = None) -> Senders:
        """Each AE title from any address (the spelling of older configurations)."""
        return cls(tuple(SenderRule(t) for t in ae_titles), limits or InboundLimits())

    @property
    def ae_titles(self) -> list[str]:
        return sorted({r.ae_title for r in self.rules})

    def is_pacs_address(self, address: Address | None) -> bool:
        return address is not None and any(r.pacs and r.admits(address) for r in self.rules)

    def refusal(
        self,
        calling_ae_title: str,
        address: Address | None,
        *,
        open_from_address: int,
        open_total: int,
        open_not_pacs: int,
    ) -> Refusal | None:
        """None when `calling_ae_title` may associate from `address`, given the associations
        already admitted (from this address, in all, and from addresses that are no PACS's)."""
        calling = calling_ae_title.strip()
        rules = [r for r in self.rules if r.ae_title == calling]
        if not rules:
            return Refusal(*CALLING_AE_NOT_RECOGNISED, "the calling AE title is not allowed")
        if not any(r.admits(address) for r in rules):
            return Refusal(
                *CALLING_AE_NOT_RECOGNISED, "the calling AE title is not allowed from this address"
            )
        limits = self.limits
        if open_from_address >= limits.per_address:
            return Refusal(*LOCAL_LIMIT_EXCEEDED, "too many associations from this address")
        if open_total >= limits.total:
            return Refusal(*LOCAL_LIMIT_EXCEEDED, "the Storage SCP has no room left")
        if open_not_pacs >= limits.total - limits.reserved and not self.is_pacs_address(address):
            return Refusal(*LOCAL_LIMIT_EXCEEDED, "the room left is kept for the configured PACS")
        return None
