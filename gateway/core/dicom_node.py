"""The gateway's DICOM side, built from settings: study store, Storage SCP and retriever."""

from __future__ import annotations

from gateway.core.settings import Settings
from pacs.retrieve import Retriever
from pacs.scp import StorageSCP
from pacs.store import StudyStore


class DicomNode:
    def __init__(self, settings: Settings) -> None:
        self.local = settings.local_node()
        self.store = StudyStore(settings.studies_dir)
        self.scp = StorageSCP(self.local, self.store, settings.senders(), settings.scp_tls())
        self.retriever = Retriever(self.local, self.store, self.scp)

    def start(self) -> None:
        self.store.remove_stale_incoming()
        self.scp.start()

    def stop(self) -> None:
        self.scp.stop()

    def __enter__(self) -> DicomNode:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
