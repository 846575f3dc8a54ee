"""Test support, not product: a fake Flynotes server, sample R4 practice data, a synthetic
matching population. Used by tests/, bench/ and orthanc-test/; never shipped in the wheel."""
