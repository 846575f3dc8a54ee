"""Render docs/configuration.md from the settings models, so the two never disagree.

python -m gateway.core.settings_doc > docs/configuration.md
"""

from __future__ import annotations

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from gateway.core.contacts import Contact
from gateway.core.settings import CONFIG_ENV, PacsSettings, Settings
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


def render() -> str:
    parts = [INTRO, "## Gateway\n", _table(Settings, env=True)]
    parts += ["\n## Each PACS (`[[pacs]]` in the TOML file)\n", _table(PacsSettings, env=False)]
    parts.append(
        "\nThe PACS must know the gateway as a DICOM modality: its `ae_title`, this machine's "
        'address and `dicom_port`, or C-MOVE fails with "Move destination unknown".\n'
    )
    parts.append(render_r4())
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
