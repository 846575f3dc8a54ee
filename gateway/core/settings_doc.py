"""Render docs/configuration.md from the settings models, so the two never disagree.

python -m gateway.core.settings_doc > docs/configuration.md
"""

from __future__ import annotations

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from gateway.core.contacts import Contact
from gateway.core.settings import CONFIG_ENV, PacsSettings, PrefetchSettings, Settings
from gateway.core.settings_doc_r4 import render_r4

INTRO = f"""# Configuration

Settings come from, highest priority first: environment variables `PACS_GATEWAY_<NAME>`,
then the TOML file named by `${CONFIG_ENV}` (or `--config FILE` on the command line), then
the defaults below. Nested values in the environment use `__` (e.g.
`PACS_GATEWAY_PACS='[{{"name": "main", ...}}]'` for the list of PACS).

This page is generated from the code (`python -m gateway.core.settings_doc`); a test keeps it
current.
"""

TESTED_PACS = """
Tested against two PACS, both started by the tests on loopback ports:

- **Orthanc 1.10.1** (Debian `orthanc`): C-MOVE, C-GET and `auto` bring every image with its
  dataset, pixel bytes and transfer syntax as stored. Register the gateway under
  `DicomModalities` and allow it C-FIND/C-MOVE/C-GET (`DicomAlwaysAllow*` or `Allow*`).
  Orthanc's DCMTK keeps Nagle's algorithm on too unless `TCP_NODELAY=1` is in its
  environment; the gateway asks for quick ACKs on its side (see dcmqrscp below), so a job
  from an Orthanc as shipped runs about as fast as from one with `TCP_NODELAY=1`
  (`bench/retrieve.py` runs both, "orthanc-default" and "orthanc": 1.39 / 1.44 s against
  1.43 / 1.43 s by move / get for a 240-slice CT). Loading studies into it
  by C-STORE is another matter (each image waits ~45 ms for the sender's ACK): the tests
  start it with `TCP_NODELAY=1`.
- **DCMTK dcmqrscp 3.6.7** (Debian `dcmtk`), in its default forking mode. It needs the gateway
  in its `HostTable` (`name = (AETITLE, host, port)`) for C-MOVE, an `AETable` line that
  lets the gateway in (`ANY`) with a quota big enough for your studies, and transfer syntax
  settings that let it keep files as stored: `+xr` (or an association profile, `-xf`) to
  accept RLE and JPEG files incoming, `-xr` (or a profile) to propose them outgoing.
  dcmqrscp cannot convert compressed files, sends every image of one SOP class in the
  syntax of the first context accepted for that class, and lists no SOPClassUID at IMAGE
  level. So: use `retrieve_method = "get"` or `"auto"` with it; the gateway then proposes
  the storage classes the series' modalities imply and, when images are refused, asks
  again one transfer syntax at a time (each step is written to the job's events).
  C-MOVE alone cannot bring a class held in several syntaxes; it fails with a message
  naming what is missing. Implicit VR files arrive as Explicit VR (dcmqrscp converts
  between uncompressed syntaxes itself; elements and pixels unchanged).
  DCMTK 3.6 leaves Nagle's algorithm on unless `TCP_NODELAY=1` is in dcmqrscp's environment:
  it then holds the rest of each answer until we ACK its first segment. The gateway turns
  Nagle off on its own side of every association and, on Linux, asks the kernel for an
  immediate ACK after every PDU it sends (TCP_QUICKACK), so that wait is gone (measured
  here: a STUDY-level C-FIND to dcmqrscp at DCMTK's default took 46 ms, 4 ms with it). Python
  cannot ask for that on Windows, where the system's delayed ACK (200 ms by default,
  `TcpDelAckTicks`, per Microsoft's documentation; not measured here) would be paid by every
  such answer: for a gateway on Windows, turn Nagle off on the PACS's side where it can be
  (DCMTK-based PACS: `TCP_NODELAY=1` in its environment), or else set the Windows server's
  `TcpAckFrequency` registry value to 1 on the interface that reaches the PACS (Microsoft
  KB 328890; it applies to every connection on that interface). The tests run dcmqrscp
  with DCMTK's default, `bench/retrieve.py` both ways.
"""


SCP_ACCEPTS = """
## What the Storage SCP accepts, and from whom

- **Who.** A configured PACS's `ae_title` is let in only from that PACS's `host` (every
  address its name resolves to; names are resolved again at most once a minute when an
  address is refused). Anyone else must be in `allowed_calling_aets`: `AET` (any address, as
  older configurations wrote it), `AET@host` or `AET@network` (`CT1@10.0.0.7`,
  `US@10.0.2.0/24`). A bare entry with a configured PACS's AE title is ignored (a warning
  at start says so): it would let anyone claim to be the PACS. Refused associations get
  A-ASSOCIATE-RJ "calling AE title not recognised" and a log line with the AE title and the
  address.
- **How many.** At most `dicom_max_associations_per_host` connections from one address (more
  are closed before a thread is spent on them), at most `dicom_max_associations` in all, of
  which `dicom_reserved_for_pacs` only for the configured PACS's hosts; an association silent
  for `dicom_idle_timeout` seconds is closed. A flood from other machines cannot take the room
  a C-MOVE needs.
- **What counts.** A file counts for a fetch only when that fetch is waiting for its study,
  it comes from that PACS's AE title, and its PatientID (and IssuerOfPatientID, when the PACS
  gave one) is what the PACS's C-FIND answered for the study. A file claiming such a study
  that fails this is held back in `<storage>/.held/quarantine/` with a note of its sender,
  never counted or served; the job's events say how many. Files of studies nobody is
  fetching are pushes: matched, then indexed or queued for review, as before.
- **Same UID, other bytes.** The PACS's copy always wins: a fetch that brings a differing copy
  of a stored instance replaces it in one step, keeps the old one in `<storage>/.held/replaced/`
  (never served) and audits what changed ("replaced by the PACS's copy: PatientName
  changed"). A study whose stored files name other patient details than the PACS answers now,
  or that holds pushed files, is fetched whole again. A push that differs from a stored copy
  is held back in quarantine. `.held/` keeps at most 1,000 files, the oldest removed first.
"""


def render() -> str:
    parts = [INTRO, "## Gateway\n", _table(Settings, env=True)]
    parts += ["\n## Each PACS (`[[pacs]]` in the TOML file)\n", _table(PacsSettings, env=False)]
    parts.append(
        "\nThe PACS must know the gateway as a DICOM modality: its `ae_title`, this machine's "
        'address and `dicom_port`, or C-MOVE fails with "Move destination unknown".\n'
    )
    parts.append(SCP_ACCEPTS)
    parts.append(render_r4())
    parts += [
        "\n## Prefetch (`[prefetch]` in the TOML file)\n",
        _table(PrefetchSettings, env=False),
        "\nIt needs the appointment book in `[r4]` (`appointments_table` and the fields after "
        "it). In the environment: `PACS_GATEWAY_PREFETCH__ENABLED=true`. How a pass runs: "
        'docs/deployment.md, "Prefetch".\n',
    ]
    parts.append(TESTED_PACS)
    parts += [
        "\n## Each contact (`[contacts.it]`, `[contacts.pacs_vendor]`, `[contacts.radiology]`)\n",
        _table(Contact, env=False),
        "\nA contact left empty shows on the fallback page as not set, with the setting that "
        "fills it. In the environment: `PACS_GATEWAY_CONTACTS__IT__PHONE=...`.\n",
    ]
    return "\n".join(parts)


def _table(model: type[BaseModel], *, env: bool) -> str:
    header = (
        "| setting | environment | default | meaning |" if env else "| key | default | meaning |"
    )
    rule = "|---|---|---|---|" if env else "|---|---|---|"
    rows = [header, rule]
    for name, field in model.model_fields.items():
        default = _default(field.default, field.default_factory)
        meaning = (field.description or "").replace("|", "\\|")
        if env:
            rows.append(f"| `{name}` | `PACS_GATEWAY_{name.upper()}` | {default} | {meaning} |")
        else:
            rows.append(f"| `{name}` | {default} | {meaning} |")
    return "\n".join(rows) + "\n"


def _default(value: object, factory: object) -> str:
    if factory is not None:
        return "`[]`" if factory is list else "see below"
    if value is PydanticUndefined:
        return "required"
    if value is None:
        return "—"
    if value == "":
        return '`""`'
    return f"`{value}`"


if __name__ == "__main__":
    print(render(), end="")
