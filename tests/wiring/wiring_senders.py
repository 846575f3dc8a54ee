"""Real DICOM senders for the push tests: DCMTK's storescu, and pynetdicom for datasets
changed in memory."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from orthanc_server import HOST
from pydicom.dataset import Dataset
from pynetdicom import AE, build_context
from pytest_orthanc import GATEWAY_AET

STORESCU = "/usr/bin/storescu"
MODALITY_AET = "XRAYROOM2"  # a modality allowed to send besides the PACS


def storescu(files: Sequence[Path], port: int, calling_aet: str) -> None:
    subprocess.run(
        [STORESCU, "-aet", calling_aet, "-aec", GATEWAY_AET, HOST, str(port), *map(str, files)],
        check=True,
        capture_output=True,
        timeout=60,
    )


def push(datasets: Sequence[Dataset], port: int, calling_aet: str) -> None:
    ae = AE(ae_title=calling_aet)
    contexts = {(str(d.SOPClassUID), str(d.file_meta.TransferSyntaxUID)) for d in datasets}
    ae.requested_contexts = [build_context(sop, ts) for sop, ts in sorted(contexts)]
    assoc = ae.associate(HOST, port, ae_title=GATEWAY_AET)
    assert assoc.is_established
    try:
        for ds in datasets:
            assert assoc.send_c_store(ds).Status == 0x0000
    finally:
        assoc.release()
