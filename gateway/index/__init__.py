"""What the gateway has stored: the study index written as files arrive, and the catalog
queries DICOMweb and previews read it through."""
