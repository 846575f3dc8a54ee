"""DICOMweb (QIDO-RS, WADO-RS) over the gateway's own store, under /dicomweb.

catalog.py     index queries: study search with QIDO filters, a study's files
dicom_json.py  DICOM JSON results and metadata from stored headers
multipart.py   multipart/related bodies of stored files, streamed unchanged
routes.py      the FastAPI router (same API keys and read permission as /api/v1)
"""
